//! A transport that records copies instead of sending them (tests, `--dry-run`-style use).

use super::{Copy, DeliveryError, Transport};

/// One recorded copy: (envelope sender, recipient, full message bytes).
pub type Sent = (String, String, Vec<u8>);

#[derive(Default)]
pub struct Stub {
    pub sent: Vec<Sent>,
    /// Fail the copy with this index (0-based, counting every attempt) with the given error.
    pub fail_at: Option<(usize, fn() -> DeliveryError)>,
    /// Copies offered so far, failed or not.
    pub attempts: usize,
}

impl Transport for Stub {
    fn send(&mut self, copy: &Copy<'_>) -> Result<(), DeliveryError> {
        self.attempts += 1;
        if let Some((n, make)) = self.fail_at
            && n + 1 == self.attempts
        {
            return Err(make());
        }
        let mut bytes = copy.header.to_vec();
        copy.message
            .for_each_body_chunk(|c| {
                bytes.extend_from_slice(c);
                Ok(())
            })
            .expect("in-memory spool");
        self.sent
            .push((copy.sender.to_string(), copy.recipient.to_string(), bytes));
        Ok(())
    }
}

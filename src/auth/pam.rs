//! `-m/--pamauth SERVICE`: check credentials with PAM (through libpam, via the nonstick
//! crate, which needs no libclang to build). The conversation answers PAM's prompts with
//! the user name and password; account management runs too, so expired or locked
//! accounts are refused. PAM calls block; ofmipd runs every check off its event loop.

use std::ffi::{OsStr, OsString};

use nonstick::{AuthnFlags, ConversationAdapter, ErrorCode, Result as PamResult, Transaction, TransactionBuilder};

use super::{Source, Verdict};

pub struct Pam {
    pub service: String,
}

struct Convo {
    user: String,
    password: String,
}

impl ConversationAdapter for Convo {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> PamResult<OsString> {
        Ok(OsString::from(&self.user))
    }
    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> PamResult<OsString> {
        Ok(OsString::from(&self.password))
    }
    fn error_msg(&self, _message: impl AsRef<OsStr>) {}
    fn info_msg(&self, _message: impl AsRef<OsStr>) {}
}

/// Something that runs PAM checks elsewhere. Global mode: PAM runs in the root launcher
/// (modules such as pam_unix can only check other users' passwords as root, and the
/// network process has no root left), which checks only ordinary accounts and limits
/// the checks itself. The launcher implements this; auth does not know about it.
pub trait Checker: Send + Sync {
    fn pam(&self, service: &str, user: &str, password: &str) -> Verdict;
}

static VIA: std::sync::OnceLock<std::sync::Arc<dyn Checker>> = std::sync::OnceLock::new();

/// Send every later PAM check through `checker`.
pub fn check_through(checker: std::sync::Arc<dyn Checker>) {
    let _ = VIA.set(checker);
}

impl Source for Pam {
    fn describe(&self) -> String {
        format!("PAM service {}", self.service)
    }

    fn check_password(&self, user: &str, password: &str) -> Verdict {
        if user.is_empty() || user.contains('\0') || password.contains('\0') {
            return Verdict::Denied;
        }
        match VIA.get() {
            Some(checker) => checker.pam(&self.service, user, password),
            None => check_here(&self.service, user, password),
        }
    }
}

/// One PAM transaction in this process: authenticate, then account management.
pub(crate) fn check_here(service: &str, user: &str, password: &str) -> Verdict {
    let convo = Convo {
        user: user.to_string(),
        password: password.to_string(),
    };
    let result = TransactionBuilder::new_with_service(service)
        .username(user)
        .build(convo.into_conversation())
        .and_then(|mut t| {
            t.authenticate(AuthnFlags::empty())?;
            t.account_management(AuthnFlags::empty())
        });
    match result {
        Ok(()) => Verdict::Accepted,
        Err(
            ErrorCode::AuthenticationError
            | ErrorCode::UserUnknown
            | ErrorCode::PermissionDenied
            | ErrorCode::AccountExpired
            | ErrorCode::CredentialsInsufficient
            | ErrorCode::NewAuthTokRequired
            | ErrorCode::MaxTries,
        ) => Verdict::Denied,
        Err(e) => Verdict::Unavailable(format!("PAM: {e}")),
    }
}

//! `--restrict-sender`: which sender addresses an authenticated login may use beyond its
//! own, from an optional map file. Read by delivery (personal mode) and by the root
//! launcher (global mode), which reads the map itself.

use std::path::PathBuf;

/// `--restrict-sender` and its optional `--sender-map FILE` (`login address...` lines,
/// `#` comments; an address `@domain` allows a whole domain). The file is read again
/// when it changes.
#[derive(Debug, Default)]
pub struct SenderPolicy {
    pub map: Option<PathBuf>,
    cache: std::sync::Mutex<Option<(Option<std::time::SystemTime>, u64, SenderMap)>>,
}

/// Login name (lower case) to the addresses it may use beyond its own.
pub type SenderMap = std::collections::HashMap<String, Vec<String>>;

/// Parse a sender map; an error names the line.
pub fn parse_sender_map(text: &str) -> Result<SenderMap, String> {
    let mut map = SenderMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty());
        let login = words.next().unwrap_or("").trim_end_matches(':').to_lowercase();
        let addrs: Vec<String> = words.map(str::to_string).collect();
        if login.is_empty() || addrs.is_empty() || addrs.iter().any(|a| !a.contains('@')) {
            return Err(format!("line {}: expected 'login address...'", i + 1));
        }
        map.entry(login).or_default().extend(addrs);
    }
    Ok(map)
}

impl SenderPolicy {
    pub fn new(map: Option<PathBuf>) -> SenderPolicy {
        SenderPolicy {
            map,
            cache: Default::default(),
        }
    }

    /// Read (or re-read) the map; an error names the file.
    pub fn load(&self) -> Result<SenderMap, String> {
        let Some(path) = &self.map else {
            return Ok(SenderMap::new());
        };
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, n, map)) = cache.as_ref()
            && (*t, *n) == stamp
        {
            return Ok(map.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let map = parse_sender_map(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        *cache = Some((stamp.0, stamp.1, map.clone()));
        Ok(map)
    }

    /// The addresses the map gives `login` beyond its own (global mode: asked by the
    /// launcher, which reads the map itself).
    pub fn allowed_for(&self, login: &str) -> Result<Vec<String>, String> {
        Ok(self.load()?.get(&login.to_lowercase()).cloned().unwrap_or_default())
    }
}

/// The first words of `tmda sendmail`'s error when `--restrict-sender` refuses a
/// message, by which ofmipd tells it from other failures of a global-mode child.
pub const SENDER_REFUSED: &str = "sender address ";

#[cfg(test)]
mod tests {
    #[test]
    fn sender_maps_parse_and_name_bad_lines() {
        let map =
            super::parse_sender_map("# who may send as what\nalice: a@x.org, @lists.example\nBob b@y.org\n\n").unwrap();
        assert_eq!(map["alice"], vec!["a@x.org", "@lists.example"]);
        assert_eq!(map["bob"], vec!["b@y.org"]);
        assert_eq!(
            super::parse_sender_map("alice\n").unwrap_err(),
            "line 1: expected 'login address...'"
        );
        assert!(
            super::parse_sender_map("ok a@b\nbad notanaddress\n")
                .unwrap_err()
                .starts_with("line 2")
        );
    }
}

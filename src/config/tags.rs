//! The words that name each kind of tagged address (`TAGS_CONFIRM`, `TAGS_DATED`, ...):
//! configuration data, which `address` reads to make and check addresses.

/// The four kinds of tagged address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirm,
    Dated,
    Sender,
    Keyword,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Confirm => "confirm",
            Kind::Dated => "dated",
            Kind::Sender => "sender",
            Kind::Keyword => "keyword",
        }
    }
}

/// Tag names per kind (`TAGS_DATED` etc.): the first one is used to make addresses,
/// all of them (and the kind's own name) are recognised when checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagNames {
    pub confirm: Vec<String>,
    pub dated: Vec<String>,
    pub sender: Vec<String>,
    pub keyword: Vec<String>,
}

impl Default for TagNames {
    fn default() -> Self {
        TagNames {
            confirm: vec!["confirm".into()],
            dated: vec!["dated".into()],
            sender: vec!["sender".into()],
            keyword: vec!["keyword".into()],
        }
    }
}

impl TagNames {
    pub fn names(&self, kind: Kind) -> &[String] {
        match kind {
            Kind::Confirm => &self.confirm,
            Kind::Dated => &self.dated,
            Kind::Sender => &self.sender,
            Kind::Keyword => &self.keyword,
        }
    }

    /// The tag written into new addresses of this kind.
    pub fn primary(&self, kind: Kind) -> String {
        self.names(kind)
            .first()
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|| kind.as_str().to_string())
    }

    /// Which kind a (lower-cased) tag names; TMDA checks confirm, dated, sender, keyword in that order.
    pub fn kind_of(&self, tag: &str) -> Option<Kind> {
        [Kind::Confirm, Kind::Dated, Kind::Sender, Kind::Keyword]
            .into_iter()
            .find(|&k| tag == k.as_str() || self.names(k).iter().any(|n| n.to_lowercase() == tag))
    }
}

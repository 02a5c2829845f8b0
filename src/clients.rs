//! The native clients the hotel knows (`KEYCARD_NATIVE_CLIENTS`): the public clients that
//! check in through the device authorization grant (RFC 8628) and keep their refresh token in
//! a request body instead of a cookie. The browser is the one other client
//! (`KEYCARD_CLIENT_ID`).

use std::str::FromStr;

/// The registered native clients, by id, each with the name a guest is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeClients(Vec<(String, String)>);

impl Default for NativeClients {
    /// The workspace's own command-line client, `keycard-cli`.
    fn default() -> Self {
        Self(vec![("keycard-cli".into(), "Keycard CLI".into())])
    }
}

impl NativeClients {
    /// None at all: the device grant and the native front desk refuse every client.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// The name of client `id`, if it is registered.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.0.iter().find(|(known, _)| known == id).map(|(_, name)| name.as_str())
    }

    /// The registered ids, in the order configured.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(id, _)| id.as_str())
    }
}

/// Why `KEYCARD_NATIVE_CLIENTS` could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadClient {
    /// An id breaks the rules.
    #[error("client id {0:?}: expected 1 to 64 of A-Z a-z 0-9 . _ -")]
    Id(String),
    /// A name breaks the rules.
    #[error("client name {0:?}: expected 1 to 64 printable characters")]
    Name(String),
    /// An id is listed twice.
    #[error("client id {0:?} is listed twice")]
    Repeated(String),
}

impl FromStr for NativeClients {
    type Err = BadClient;

    /// `id=Name` pairs separated by commas (`keycard-cli=Keycard CLI,tv=Living-room TV`); a
    /// bare id is its own name; `none` registers no client.
    fn from_str(raw: &str) -> Result<Self, BadClient> {
        if raw.trim().eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        let mut clients: Vec<(String, String)> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, name) = entry.split_once('=').unwrap_or((entry, entry));
            let (id, name) = (id.trim(), name.trim());
            let id_ok = (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !id_ok {
                return Err(BadClient::Id(id.to_owned()));
            }
            let name_ok =
                (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control);
            if !name_ok {
                return Err(BadClient::Name(name.to_owned()));
            }
            if clients.iter().any(|(known, _)| known == id) {
                return Err(BadClient::Repeated(id.to_owned()));
            }
            clients.push((id.to_owned(), name.to_owned()));
        }
        Ok(Self(clients))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_the_setting() {
        let parsed = |raw: &str| raw.parse::<NativeClients>();
        let two = parsed("keycard-cli=Keycard CLI, tv = Living-room TV").unwrap();
        assert_eq!(two.name("keycard-cli"), Some("Keycard CLI"));
        assert_eq!(two.name("tv"), Some("Living-room TV"));
        assert_eq!(two.name("keycard-web"), None);
        assert_eq!(parsed("bare").unwrap().name("bare"), Some("bare"));
        assert_eq!(parsed("none").unwrap(), NativeClients::none());
        assert_eq!(parsed("a b=x"), Err(BadClient::Id("a b".into())));
        assert_eq!(parsed("a="), Err(BadClient::Name(String::new())));
        assert_eq!(parsed("a=x,a=y"), Err(BadClient::Repeated("a".into())));
        assert_eq!(NativeClients::default().ids().collect::<Vec<_>>(), ["keycard-cli"]);
    }
}

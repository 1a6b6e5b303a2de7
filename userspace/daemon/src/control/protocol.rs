//! The control socket's path and its requests: one line from the client (see the
//! [module docs](super)).

use std::path::{Path, PathBuf};

use tandem_datapath::worker::parse_core_list;

/// File name of the control socket in the state directory.
pub const SOCKET_NAME: &str = "tandem.sock";

/// The path of the control socket of `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `status [--json]`.
    Status {
        /// One JSON object instead of text.
        json: bool,
    },
    /// `tune show [--json]`.
    TuneShow {
        /// One JSON object instead of text.
        json: bool,
    },
    /// `tune cores LIST`.
    TuneCores(Vec<usize>),
    /// `partner-down [NAME]` (the rest of the line, trimmed, is the name).
    PartnerDown(Option<String>),
}

/// Parses one request line (see the module docs).
///
/// # Errors
/// Unknown command, bad core list, extra words.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let trimmed = line.trim();
    if let Some(rest) = trimmed.strip_prefix("partner-down")
        && (rest.is_empty() || rest.starts_with(char::is_whitespace))
    {
        let name = rest.trim();
        return Ok(Request::PartnerDown(
            (!name.is_empty()).then(|| name.to_owned()),
        ));
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => Ok(Request::Status { json: false }),
        ["status", "--json"] => Ok(Request::Status { json: true }),
        ["tune", "show"] => Ok(Request::TuneShow { json: false }),
        ["tune", "show", "--json"] => Ok(Request::TuneShow { json: true }),
        ["tune", "cores", list] => parse_core_list(list)
            .map(Request::TuneCores)
            .map_err(|e| e.to_string()),
        _ => Err(format!(
            "unknown request {:?} (expected `status [--json]`, `tune show [--json]`, \
             `tune cores LIST` or `partner-down [NAME]`)",
            line.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parsed() {
        assert_eq!(
            parse_request("status\n"),
            Ok(Request::Status { json: false })
        );
        assert_eq!(
            parse_request(" tune  show --json"),
            Ok(Request::TuneShow { json: true })
        );
        assert_eq!(
            parse_request("tune cores 0-1,3"),
            Ok(Request::TuneCores(vec![0, 1, 3]))
        );
        assert!(parse_request("").is_err());
        assert_eq!(
            parse_request("partner-down\n"),
            Ok(Request::PartnerDown(None))
        );
        assert_eq!(
            parse_request("partner-down  dc1 dc2 \n"),
            Ok(Request::PartnerDown(Some("dc1 dc2".to_owned())))
        );
        assert!(parse_request("partner-downx").is_err());
        assert!(parse_request("tune cores").is_err());
        assert!(parse_request("tune cores 1 2").is_err());
    }
}

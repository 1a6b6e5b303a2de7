//! Shared helpers of the `dhcp_*` integration tests: the `.hex` vector loader and small
//! builders for malformed twins.

#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

use tandem_wire::option::{OptionCode, OptionIter};

/// Parses a vector file: `#` starts a comment (to the end of the line), whitespace separates
/// hex bytes. The file must start with a `# provenance:` header.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    assert!(
        text.starts_with("# provenance:"),
        "vector without a provenance header"
    );
    let mut digits = String::new();
    for line in text.lines() {
        let data = line.split('#').next().unwrap_or_default();
        digits.extend(data.chars().filter(|c| !c.is_whitespace()));
    }
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("bad hex digit"))
        .collect()
}

/// Every vector, by name.
pub(crate) const VECTORS: &[(&str, &str)] = &[
    (
        "dhclient_solicit",
        include_str!("../vectors/dhcp_dhclient_solicit.hex"),
    ),
    (
        "dhcpcd_solicit",
        include_str!("../vectors/dhcp_dhcpcd_solicit.hex"),
    ),
    (
        "wide_solicit",
        include_str!("../vectors/dhcp_wide_solicit.hex"),
    ),
    (
        "relay_forw_solicit",
        include_str!("../vectors/dhcp_relay_forw_solicit.hex"),
    ),
    (
        "relay_double",
        include_str!("../vectors/dhcp_relay_double.hex"),
    ),
    (
        "rfc8415_reply",
        include_str!("../vectors/dhcp_rfc8415_reply.hex"),
    ),
    (
        "rfc8415_info_request",
        include_str!("../vectors/dhcp_rfc8415_info_request.hex"),
    ),
    (
        "capture_dhclient_solicit",
        include_str!("../vectors/dhcp_capture_dhclient_solicit.hex"),
    ),
    (
        "capture_dhclient_pd_solicit",
        include_str!("../vectors/dhcp_capture_dhclient_pd_solicit.hex"),
    ),
    (
        "capture_dhclient_info_request",
        include_str!("../vectors/dhcp_capture_dhclient_info_request.hex"),
    ),
    (
        "capture_dhcpcd_solicit",
        include_str!("../vectors/dhcp_capture_dhcpcd_solicit.hex"),
    ),
    (
        "capture_wide_dhcp6c_solicit",
        include_str!("../vectors/dhcp_capture_wide_dhcp6c_solicit.hex"),
    ),
];

/// The bytes of the vector called `name`.
pub(crate) fn vector(name: &str) -> Vec<u8> {
    let (_, text) = VECTORS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("no such vector");
    hex(text)
}

/// One option, header included.
pub(crate) fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(
        &u16::try_from(data.len())
            .expect("option too long")
            .to_be_bytes(),
    );
    out.extend_from_slice(data);
    out
}

/// Rebuilds the options block `block`, replacing the data of the first option `code` with
/// what `edit` makes of it.
pub(crate) fn edit_option(
    block: &[u8],
    code: OptionCode,
    edit: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut done = false;
    for o in OptionIter::new(block) {
        let o = o.expect("vector block is valid");
        if o.code == code && !done {
            out.extend(opt(code.0, &edit(o.data)));
            done = true;
        } else {
            out.extend(opt(o.code.0, o.data));
        }
    }
    assert!(done, "option {code:?} not in block");
    out
}

/// Offsets at which a top-level option block starting at `start` in `msg` may end: the start of
/// the block and the end of each option.
pub(crate) fn option_boundaries(msg: &[u8], start: usize) -> Vec<usize> {
    let mut out = vec![start];
    let mut pos = start;
    for o in OptionIter::new(&msg[start..]) {
        pos += o.expect("valid block").wire_len();
        out.push(pos);
    }
    out
}

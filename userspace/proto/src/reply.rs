//! Writing Advertise and Reply messages (RFC 8415 §18.3.9, §18.3.10) straight into a buffer.

use core::ops::Range;

use tandem_config::Subnet;
use tandem_lease::LeaseKind;
use tandem_wire::Result;
use tandem_wire::codec::Writer;
use tandem_wire::dhcp::option::CodeList;
use tandem_wire::dhcp::{MessageType, StatusCode};
use tandem_wire::option::OptionCode;

use crate::alloc::Lease;

/// One lease in a reply IA, with the lifetimes sent (0/0 tells the client to stop using it,
/// RFC 8415 §18.3.4, §18.3.5).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseOut {
    pub(crate) lease: Lease,
    pub(crate) preferred: u32,
    pub(crate) valid: u32,
    /// The valid lifetime the subnet's policy wanted before the MCLT cap (RFC 8156 §4.4
    /// "desired lifetime"), for the partner lifetime.
    pub(crate) desired: u32,
    /// Left out of the reply (its commit failed).
    pub(crate) withdrawn: bool,
}

impl LeaseOut {
    /// A lease the client must stop using (lifetimes 0).
    pub(crate) const fn zero(lease: Lease) -> Self {
        Self {
            lease,
            preferred: 0,
            valid: 0,
            desired: 0,
            withdrawn: false,
        }
    }

    /// `true` if the reply grants it (not withdrawn, valid lifetime > 0).
    pub(crate) const fn granted(&self) -> bool {
        !self.withdrawn && self.valid > 0
    }
}

/// A Status Code option (RFC 8415 §21.13): the code and the message for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: StatusCode,
    pub(crate) text: &'static str,
}

impl Status {
    /// `code` with its usual message.
    pub(crate) const fn of(code: StatusCode) -> Self {
        Self {
            code,
            text: status_text(code),
        }
    }
}

/// One IA_NA or IA_PD of a reply; its leases are `leases` of the reply's lease list.
#[derive(Clone, Debug)]
pub(crate) struct IaOut {
    pub(crate) kind: LeaseKind,
    pub(crate) iaid: u32,
    pub(crate) t1: u32,
    pub(crate) t2: u32,
    pub(crate) leases: Range<usize>,
    pub(crate) status: Option<Status>,
    /// Left out of the reply (Release / Decline: an IA the server released or declined,
    /// RFC 8415 §18.3.7, §18.3.8).
    pub(crate) omit: bool,
}

/// A human-readable message for each status we send (RFC 8415 §21.13).
pub(crate) const fn status_text(code: StatusCode) -> &'static str {
    match code.0 {
        0 => "success",
        1 => "failure",
        2 => "no addresses available",
        3 => "no binding for this IA",
        4 => "address not on link",
        6 => "no prefixes available",
        _ => "failure",
    }
}

fn write_status(w: &mut Writer<'_>, status: Status) -> Result<()> {
    w.option(OptionCode::STATUS_CODE.0, |w| {
        w.u16(status.code.0)?;
        w.put(status.text.as_bytes())
    })
}

fn write_ia(w: &mut Writer<'_>, ia: &IaOut, leases: &[LeaseOut]) -> Result<()> {
    let code = match ia.kind {
        LeaseKind::Address => OptionCode::IA_NA,
        LeaseKind::Prefix => OptionCode::IA_PD,
    };
    w.option(code.0, |w| {
        w.u32(ia.iaid)?;
        w.u32(ia.t1)?;
        w.u32(ia.t2)?;
        let mine = leases.get(ia.leases.clone()).unwrap_or_default();
        for l in mine.iter().filter(|l| !l.withdrawn) {
            match ia.kind {
                // RFC 8415 §21.6.
                LeaseKind::Address => w.option(OptionCode::IAADDR.0, |w| {
                    w.ipv6(l.lease.addr)?;
                    w.u32(l.preferred)?;
                    w.u32(l.valid)
                })?,
                // RFC 8415 §21.22.
                LeaseKind::Prefix => w.option(OptionCode::IAPREFIX.0, |w| {
                    w.u32(l.preferred)?;
                    w.u32(l.valid)?;
                    w.u8(l.lease.len)?;
                    w.ipv6(l.lease.addr)
                })?,
            }
        }
        match ia.status {
            Some(status) => write_status(w, status),
            None => Ok(()),
        }
    })
}

/// Everything a reply holds besides the header.
#[derive(Debug)]
pub(crate) struct ReplyParts<'a> {
    pub(crate) msg_type: MessageType,
    pub(crate) transaction_id: u32,
    pub(crate) server_duid: &'a [u8],
    pub(crate) client_id: Option<&'a [u8]>,
    pub(crate) preference: Option<u8>,
    pub(crate) rapid_commit: bool,
    pub(crate) status: Option<Status>,
    pub(crate) ias: &'a [IaOut],
    pub(crate) leases: &'a [LeaseOut],
    /// The subnet's options and its encoded domain list, if the client has a subnet.
    pub(crate) options: Option<(&'a Subnet, &'a [u8])>,
    pub(crate) oro: Option<CodeList<'a>>,
    /// Information Refresh Time only goes in replies to Information-Request (RFC 8415 §21.23).
    pub(crate) information_request: bool,
}

/// Writes the message; returns its length.
pub(crate) fn write(buf: &mut [u8], p: &ReplyParts<'_>) -> Result<usize> {
    let mut w = Writer::new(buf);
    w.u8(p.msg_type.0)?;
    w.u24(p.transaction_id)?;
    // RFC 8415 §18.3: Server Identifier and the client's Client Identifier.
    w.option(OptionCode::SERVERID.0, |w| w.put(p.server_duid))?;
    if let Some(c) = p.client_id {
        w.option(OptionCode::CLIENTID.0, |w| w.put(c))?;
    }
    if let Some(pref) = p.preference {
        w.option(OptionCode::PREFERENCE.0, |w| w.u8(pref))?;
    }
    if p.rapid_commit {
        w.option(OptionCode::RAPID_COMMIT.0, |_| Ok(()))?;
    }
    if let Some(status) = p.status {
        write_status(&mut w, status)?;
    }
    for ia in p.ias.iter().filter(|ia| !ia.omit) {
        write_ia(&mut w, ia, p.leases)?;
    }
    if let (Some((subnet, domains)), Some(oro)) = (p.options, p.oro) {
        let o = &subnet.options;
        // RFC 8415 §18.3.9, §21.7: configured options the client asked for.
        if oro.contains(OptionCode::DNS_SERVERS) && !o.dns_servers.is_empty() {
            w.option(OptionCode::DNS_SERVERS.0, |w| {
                o.dns_servers.iter().try_for_each(|a| w.ipv6(*a))
            })?;
        }
        if oro.contains(OptionCode::DOMAIN_LIST) && !domains.is_empty() {
            w.option(OptionCode::DOMAIN_LIST.0, |w| w.put(domains))?;
        }
        if let Some(v) = o
            .sol_max_rt
            .filter(|_| oro.contains(OptionCode::SOL_MAX_RT))
        {
            w.option(OptionCode::SOL_MAX_RT.0, |w| w.u32(v))?;
        }
        if let Some(v) = o
            .inf_max_rt
            .filter(|_| oro.contains(OptionCode::INF_MAX_RT))
        {
            w.option(OptionCode::INF_MAX_RT.0, |w| w.u32(v))?;
        }
        if p.information_request
            && let Some(v) = o
                .information_refresh_time
                .filter(|_| oro.contains(OptionCode::INFORMATION_REFRESH_TIME))
        {
            w.option(OptionCode::INFORMATION_REFRESH_TIME.0, |w| w.u32(v))?;
        }
    }
    Ok(w.position())
}

/// RFC 1035 wire form of the domain search list (RFC 8415 §10, RFC 3646 §4), uncompressed,
/// each name encoded by [`tandem_wire::dhcp::domain::encode_name`]. Names are validated by
/// tandem-config (labels ≤ 63 bytes, names ≤ 255 bytes), so encoding cannot fail; a name that
/// did would be left out rather than sent half-written.
pub(crate) fn encode_domain_list(names: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut name_buf = [0u8; 256];
    for name in names {
        if let Ok(n) = tandem_wire::dhcp::domain::encode_name(name, true, &mut name_buf) {
            out.extend_from_slice(name_buf.get(..n).unwrap_or_default());
        }
    }
    out
}

//! OPTION_CLIENT_DATA (45, RFC 5007 §4.1.2.2) as RFC 8156 §7.4/§7.6 fill it: one client's
//! whole binding, and the per-lease binding options inside each IAADDR/IAPREFIX.
//!
//! ```text
//! OPTION_CLIENT_DATA
//!   OPTION_CLIENTID, OPTION_LQ_BASE_TIME, [OPTION_VSS], [OPTION_F_RECONFIGURE_DATA],
//!   [OPTION_LQ_RELAY_DATA], [OPTION_STATUS_CODE (BNDREPLY)]
//!   OPTION_IA_NA | OPTION_IA_TA | OPTION_IA_PD  (one or more)
//!     OPTION_IAADDR | OPTION_IAPREFIX           (one or more)
//!       binding options: see BindingInfo
//! ```

use super::option::{
    BindingStatus, CltTime, DnsRemovalInfo, ExpirationTime, LqBaseTime, LqRelayData, OptionList,
    PartnerLifetime, PartnerLifetimeSent, PartnerRawCltTime, ReconfigureData, StartTimeOfState,
    StateExpirationTime, Vss, find_unique,
};
use crate::codec::Writer;
use crate::dhcp::{Duid, IaAddr, IaNa, IaPd, IaPrefix, IaTa, StatusCodeOption};
use crate::option::{EmitOption, OptionCode, OptionIter, Options, RawOption};
use crate::{Error, Result};

/// Every option of a parsed block, in wire order (none for a built `List` block).
fn all<'a>(options: &Options<'a>) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
    let bytes = options.raw().map_or(&[][..], |r| r.as_bytes());
    OptionIter::new(bytes).filter_map(core::result::Result::ok)
}

/// The single option `code` of a parsed block, decoded with `parse`.
pub(super) fn unique<'a, T>(
    options: &Options<'a>,
    code: OptionCode,
    duplicate: &'static str,
    parse: impl FnOnce(&'a [u8]) -> Result<T>,
) -> Result<Option<T>> {
    find_unique(options, code, duplicate)?
        .map(|o| parse(o.data))
        .transpose()
}

/// `value`, or `Malformed(missing)`.
fn require<T>(value: Option<T>, missing: &'static str) -> Result<T> {
    value.ok_or(Error::Malformed(missing))
}

/// The binding options of one IAADDR or IAPREFIX (RFC 8156 §7.4 "Inside of the IAaddr-options
/// or IAprefix-options", §7.6 for BNDREPLY), decoded. Parsing checks the format of each and
/// that none appears twice; which ones are required depends on the message, see
/// [`BindingInfo::check_update`]. Other options (e.g. a Status Code in BNDUPD) are ignored here
/// and stay in the IAADDR/IAPREFIX option block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BindingInfo<'a> {
    /// OPTION_STATUS_CODE: the partner's verdict on this lease (BNDREPLY, §7.6).
    pub status: Option<StatusCodeOption<'a>>,
    /// OPTION_VSS (bare IAPREFIX only, §7.4).
    pub vss: Option<Vss<'a>>,
    /// OPTION_LQ_BASE_TIME (bare IAPREFIX only, where it MUST appear, §7.4).
    pub lq_base_time: Option<LqBaseTime>,
    /// OPTION_F_BINDING_STATUS (MUST in BNDUPD).
    pub binding_status: Option<BindingStatus>,
    /// OPTION_F_START_TIME_OF_STATE (MUST in BNDUPD).
    pub start_time_of_state: Option<StartTimeOfState>,
    /// OPTION_F_STATE_EXPIRATION_TIME (iff the binding-status has a timeout).
    pub state_expiration_time: Option<StateExpirationTime>,
    /// OPTION_CLT_TIME: seconds before the LQ_BASE_TIME that the sender last talked to the client.
    pub clt_time: Option<CltTime>,
    /// OPTION_F_PARTNER_LIFETIME (iff the binding-status has a timeout).
    pub partner_lifetime: Option<PartnerLifetime>,
    /// OPTION_F_PARTNER_RAW_CLT_TIME.
    pub partner_raw_clt_time: Option<PartnerRawCltTime>,
    /// OPTION_F_EXPIRATION_TIME (iff the binding-status has a timeout).
    pub expiration_time: Option<ExpirationTime>,
    /// OPTION_CLIENT_FQDN (RFC 4704), undecoded.
    pub client_fqdn: Option<RawOption<'a>>,
    /// OPTION_F_DNS_REMOVAL_INFO (placed next to OPTION_CLIENT_FQDN, RFC 8156 §9.2).
    pub dns_removal_info: Option<DnsRemovalInfo<'a>>,
    /// OPTION_F_PARTNER_LIFETIME_SENT (BNDREPLY, §7.6).
    pub partner_lifetime_sent: Option<PartnerLifetimeSent>,
}

impl<'a> BindingInfo<'a> {
    /// Decodes the binding options of a parsed IAaddr-options or IAprefix-options block (a
    /// built `List` block gives the empty info).
    ///
    /// One pass over the block finds the first option of each code and whether it appears
    /// again; then the fields are decoded in their order, each refused as a duplicate before
    /// its value is parsed, as `unique` does per code. The errors are the same as thirteen
    /// `unique` walks over the block would give, for a thirteenth of the work (every BNDUPD
    /// and BNDREPLY carries one block per lease).
    pub fn parse(options: &Options<'a>) -> Result<Self> {
        use OptionCode as C;
        const CODES: [OptionCode; 13] = [
            C::STATUS_CODE,
            C::VSS,
            C::LQ_BASE_TIME,
            C::F_BINDING_STATUS,
            C::F_START_TIME_OF_STATE,
            C::F_STATE_EXPIRATION_TIME,
            C::CLT_TIME,
            C::F_PARTNER_LIFETIME,
            C::F_PARTNER_RAW_CLT_TIME,
            C::F_EXPIRATION_TIME,
            C::CLIENT_FQDN,
            C::F_DNS_REMOVAL_INFO,
            C::F_PARTNER_LIFETIME_SENT,
        ];
        let mut first: [Option<RawOption<'a>>; 13] = [None; 13];
        let mut duplicated = 0u16;
        for o in all(options) {
            if let Some(i) = CODES.iter().position(|c| *c == o.code) {
                match first.get_mut(i) {
                    Some(Some(_)) => duplicated |= 1 << i,
                    Some(slot) => *slot = Some(o),
                    None => {}
                }
            }
        }
        // The option of field `i`, or the duplicate error.
        let one = |i: usize, duplicate: &'static str| -> Result<Option<RawOption<'a>>> {
            if duplicated & (1 << i) != 0 {
                return Err(Error::Malformed(duplicate));
            }
            Ok(first.get(i).copied().flatten())
        };
        // ... decoded with `parse`.
        fn decode<'a, T>(
            o: Option<RawOption<'a>>,
            parse: impl FnOnce(&'a [u8]) -> Result<T>,
        ) -> Result<Option<T>> {
            o.map(|o| parse(o.data)).transpose()
        }
        Ok(Self {
            status: decode(
                one(0, "duplicate OPTION_STATUS_CODE")?,
                StatusCodeOption::parse,
            )?,
            vss: decode(one(1, "duplicate OPTION_VSS")?, Vss::parse)?,
            lq_base_time: decode(one(2, "duplicate OPTION_LQ_BASE_TIME")?, LqBaseTime::parse)?,
            binding_status: decode(
                one(3, "duplicate OPTION_F_BINDING_STATUS")?,
                BindingStatus::parse,
            )?,
            start_time_of_state: decode(
                one(4, "duplicate OPTION_F_START_TIME_OF_STATE")?,
                StartTimeOfState::parse,
            )?,
            state_expiration_time: decode(
                one(5, "duplicate OPTION_F_STATE_EXPIRATION_TIME")?,
                StateExpirationTime::parse,
            )?,
            clt_time: decode(one(6, "duplicate OPTION_CLT_TIME")?, CltTime::parse)?,
            partner_lifetime: decode(
                one(7, "duplicate OPTION_F_PARTNER_LIFETIME")?,
                PartnerLifetime::parse,
            )?,
            partner_raw_clt_time: decode(
                one(8, "duplicate OPTION_F_PARTNER_RAW_CLT_TIME")?,
                PartnerRawCltTime::parse,
            )?,
            expiration_time: decode(
                one(9, "duplicate OPTION_F_EXPIRATION_TIME")?,
                ExpirationTime::parse,
            )?,
            client_fqdn: one(10, "duplicate OPTION_CLIENT_FQDN")?,
            dns_removal_info: decode(
                one(11, "duplicate OPTION_F_DNS_REMOVAL_INFO")?,
                DnsRemovalInfo::parse,
            )?,
            partner_lifetime_sent: decode(
                one(12, "duplicate OPTION_F_PARTNER_LIFETIME_SENT")?,
                PartnerLifetimeSent::parse,
            )?,
        })
    }

    /// Checks the MUSTs of RFC 8156 §7.4 for a lease inside OPTION_CLIENT_DATA of a BNDUPD:
    /// OPTION_F_BINDING_STATUS and OPTION_F_START_TIME_OF_STATE. `kind` names the lease in
    /// the error.
    pub fn check_update(&self, kind: LeaseKind) -> Result<()> {
        let (no_status, no_start) = match kind {
            LeaseKind::Addr => (
                "IAADDR without OPTION_F_BINDING_STATUS",
                "IAADDR without OPTION_F_START_TIME_OF_STATE",
            ),
            LeaseKind::Prefix => (
                "IAPREFIX without OPTION_F_BINDING_STATUS",
                "IAPREFIX without OPTION_F_START_TIME_OF_STATE",
            ),
        };
        require(self.binding_status, no_status)?;
        require(self.start_time_of_state, no_start)?;
        Ok(())
    }

    /// Checks the MUSTs of RFC 8156 §7.4 for a bare OPTION_IAPREFIX in a BNDUPD: the two of
    /// [`BindingInfo::check_update`] and OPTION_LQ_BASE_TIME.
    pub fn check_bare_prefix_update(&self) -> Result<()> {
        require(self.lq_base_time, "IAPREFIX without OPTION_LQ_BASE_TIME")?;
        self.check_update(LeaseKind::Prefix)
    }

    /// The options to emit, in the order of RFC 8156 §7.4 and §7.6 (Status Code first, then
    /// VSS and LQ_BASE_TIME, the times, FQDN data, PARTNER_LIFETIME_SENT last).
    pub fn to_list(&self) -> OptionList<'_, 13> {
        let mut l = OptionList::new();
        // 13 slots for 13 fields: no push can fail.
        let _ = l.push_some(self.status.as_ref());
        let _ = l.push_some(self.vss.as_ref());
        let _ = l.push_some(self.lq_base_time.as_ref());
        let _ = l.push_some(self.binding_status.as_ref());
        let _ = l.push_some(self.start_time_of_state.as_ref());
        let _ = l.push_some(self.state_expiration_time.as_ref());
        let _ = l.push_some(self.clt_time.as_ref());
        let _ = l.push_some(self.partner_lifetime.as_ref());
        let _ = l.push_some(self.partner_raw_clt_time.as_ref());
        let _ = l.push_some(self.expiration_time.as_ref());
        let _ = l.push_some(self.client_fqdn.as_ref());
        let _ = l.push_some(self.dns_removal_info.as_ref());
        let _ = l.push_some(self.partner_lifetime_sent.as_ref());
        l
    }
}

/// Whether a lease is an address (IAADDR) or a prefix (IAPREFIX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseKind {
    /// OPTION_IAADDR inside IA_NA or IA_TA.
    Addr,
    /// OPTION_IAPREFIX inside IA_PD (or bare in BNDUPD/BNDREPLY).
    Prefix,
}

/// One identity association of a client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ia<'a> {
    /// OPTION_IA_NA.
    Na(IaNa<'a>),
    /// OPTION_IA_TA (obsolete since RFC 9915, still listed by RFC 8156 §7.4).
    Ta(IaTa<'a>),
    /// OPTION_IA_PD.
    Pd(IaPd<'a>),
}

impl<'a> Ia<'a> {
    /// Decodes an IA_NA, IA_TA or IA_PD option; `None` for any other code.
    pub fn parse(raw: RawOption<'a>) -> Option<Result<Self>> {
        Some(match raw.code {
            OptionCode::IA_NA => IaNa::parse(raw.data).map(Self::Na),
            OptionCode::IA_TA => IaTa::parse(raw.data).map(Self::Ta),
            OptionCode::IA_PD => IaPd::parse(raw.data).map(Self::Pd),
            _ => return None,
        })
    }

    /// The IAID.
    pub const fn iaid(&self) -> u32 {
        match self {
            Self::Na(ia) => ia.iaid,
            Self::Ta(ia) => ia.iaid,
            Self::Pd(ia) => ia.iaid,
        }
    }

    /// The IA's own options (IAADDR/IAPREFIX, Status Code, ...).
    pub const fn options(&self) -> Options<'a> {
        match self {
            Self::Na(ia) => ia.options,
            Self::Ta(ia) => ia.options,
            Self::Pd(ia) => ia.options,
        }
    }

    /// What kind of lease the IA holds.
    pub const fn lease_kind(&self) -> LeaseKind {
        match self {
            Self::Na(_) | Self::Ta(_) => LeaseKind::Addr,
            Self::Pd(_) => LeaseKind::Prefix,
        }
    }

    /// The IA's first Status Code option (BNDREPLY rejections at IA level, RFC 8156 §7.7).
    pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
        unique(
            &self.options(),
            OptionCode::STATUS_CODE,
            "duplicate OPTION_STATUS_CODE",
            StatusCodeOption::parse,
        )
    }

    /// The IA's leases (IAADDR for IA_NA/IA_TA, IAPREFIX for IA_PD), each with its binding
    /// options decoded; undecodable ones are skipped (a parsed [`ClientData`] has none).
    pub fn leases(&self) -> impl Iterator<Item = Lease<'a>> + use<'a> {
        let ia = *self;
        let code = match self.lease_kind() {
            LeaseKind::Addr => OptionCode::IAADDR,
            LeaseKind::Prefix => OptionCode::IAPREFIX,
        };
        all(&self.options())
            .filter(move |o| o.code == code)
            .filter_map(move |o| Lease::parse(ia, o).ok())
    }
}

impl EmitOption for Ia<'_> {
    fn code(&self) -> OptionCode {
        match self {
            Self::Na(ia) => ia.code(),
            Self::Ta(ia) => ia.code(),
            Self::Pd(ia) => ia.code(),
        }
    }
    fn data_len(&self) -> usize {
        match self {
            Self::Na(ia) => ia.data_len(),
            Self::Ta(ia) => ia.data_len(),
            Self::Pd(ia) => ia.data_len(),
        }
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Self::Na(ia) => ia.emit_data(w),
            Self::Ta(ia) => ia.emit_data(w),
            Self::Pd(ia) => ia.emit_data(w),
        }
    }
}

/// An address or a prefix lease.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LeaseOption<'a> {
    /// OPTION_IAADDR.
    Addr(IaAddr<'a>),
    /// OPTION_IAPREFIX.
    Prefix(IaPrefix<'a>),
}

impl<'a> LeaseOption<'a> {
    /// The lease's own options (where the binding options live).
    pub const fn options(&self) -> Options<'a> {
        match self {
            Self::Addr(a) => a.options,
            Self::Prefix(p) => p.options,
        }
    }

    /// Address or prefix.
    pub const fn kind(&self) -> LeaseKind {
        match self {
            Self::Addr(_) => LeaseKind::Addr,
            Self::Prefix(_) => LeaseKind::Prefix,
        }
    }
}

/// One lease of a client: its IA, the IAADDR/IAPREFIX, and the decoded binding options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lease<'a> {
    /// The IA the lease belongs to.
    pub ia: Ia<'a>,
    /// The IAADDR or IAPREFIX.
    pub lease: LeaseOption<'a>,
    /// Its binding options.
    pub info: BindingInfo<'a>,
}

impl<'a> Lease<'a> {
    /// Decodes `raw` (an IAADDR or IAPREFIX of `ia`) and its binding options.
    fn parse(ia: Ia<'a>, raw: RawOption<'a>) -> Result<Self> {
        let lease = match raw.code {
            OptionCode::IAADDR => LeaseOption::Addr(IaAddr::parse(raw.data)?),
            _ => LeaseOption::Prefix(IaPrefix::parse(raw.data)?),
        };
        let info = BindingInfo::parse(&lease.options())?;
        Ok(Self { ia, lease, info })
    }
}

/// OPTION_CLIENT_DATA (45): a view over its client-options. Parsing validates the TLVs and the
/// format of every option RFC 8156 §7.4 puts there, down to the binding options of each lease,
/// so the accessors below cannot fail on a parsed block; whether the options a message
/// requires are present is checked by [`ClientData::check_update`] (BNDUPD) and
/// [`ClientData::check_reply`] (BNDREPLY). The block is re-emitted verbatim.
///
/// Accessors read parsed blocks; a block being built (`Options::List`) answers `None`/empty.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClientData<'a> {
    /// The client-options.
    pub options: Options<'a>,
}

impl<'a> ClientData<'a> {
    /// Parses OPTION_CLIENT_DATA data.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        use OptionCode as C;
        let this = Self {
            options: Options::parse(data)?,
        };
        let o = &this.options;
        unique(o, C::CLIENTID, "duplicate OPTION_CLIENTID", Duid::parse)?;
        unique(
            o,
            C::LQ_BASE_TIME,
            "duplicate OPTION_LQ_BASE_TIME",
            LqBaseTime::parse,
        )?;
        unique(o, C::VSS, "duplicate OPTION_VSS", Vss::parse)?;
        unique(
            o,
            C::F_RECONFIGURE_DATA,
            "duplicate OPTION_F_RECONFIGURE_DATA",
            ReconfigureData::parse,
        )?;
        unique(
            o,
            C::LQ_RELAY_DATA,
            "duplicate OPTION_LQ_RELAY_DATA",
            LqRelayData::parse,
        )?;
        unique(
            o,
            C::STATUS_CODE,
            "duplicate OPTION_STATUS_CODE",
            StatusCodeOption::parse,
        )?;
        for raw in all(o) {
            let Some(ia) = Ia::parse(raw).transpose()? else {
                continue;
            };
            ia.status()?;
            let code = match ia.lease_kind() {
                LeaseKind::Addr => C::IAADDR,
                LeaseKind::Prefix => C::IAPREFIX,
            };
            for lease in all(&ia.options()).filter(|l| l.code == code) {
                Lease::parse(ia, lease)?;
            }
        }
        Ok(this)
    }

    /// The client's DUID (OPTION_CLIENTID).
    pub fn client_id(&self) -> Option<Duid<'a>> {
        self.get(OptionCode::CLIENTID, Duid::parse)
    }

    /// When this block was built (OPTION_LQ_BASE_TIME).
    pub fn lq_base_time(&self) -> Option<LqBaseTime> {
        self.get(OptionCode::LQ_BASE_TIME, LqBaseTime::parse)
    }

    /// The binding's VPN (OPTION_VSS), if not the default one.
    pub fn vss(&self) -> Option<Vss<'a>> {
        self.get(OptionCode::VSS, Vss::parse)
    }

    /// The client's reconfigure key (OPTION_F_RECONFIGURE_DATA).
    pub fn reconfigure_data(&self) -> Option<ReconfigureData<'a>> {
        self.get(OptionCode::F_RECONFIGURE_DATA, ReconfigureData::parse)
    }

    /// The client's last relay chain (OPTION_LQ_RELAY_DATA).
    pub fn relay_data(&self) -> Option<LqRelayData<'a>> {
        self.get(OptionCode::LQ_RELAY_DATA, LqRelayData::parse)
    }

    /// A Status Code at client level: in a BNDREPLY, an error here rejects the whole update
    /// (RFC 8156 §7.6 item 1).
    pub fn status(&self) -> Option<StatusCodeOption<'a>> {
        self.get(OptionCode::STATUS_CODE, StatusCodeOption::parse)
    }

    /// The IA_NA, IA_TA and IA_PD options, in wire order.
    pub fn ias(&self) -> impl Iterator<Item = Ia<'a>> + use<'a> {
        all(&self.options).filter_map(|o| Ia::parse(o)?.ok())
    }

    /// The IA_NA options.
    pub fn ia_nas(&self) -> impl Iterator<Item = IaNa<'a>> + use<'a> {
        self.ias()
            .filter_map(|ia| if let Ia::Na(na) = ia { Some(na) } else { None })
    }

    /// The IA_TA options.
    pub fn ia_tas(&self) -> impl Iterator<Item = IaTa<'a>> + use<'a> {
        self.ias()
            .filter_map(|ia| if let Ia::Ta(ta) = ia { Some(ta) } else { None })
    }

    /// The IA_PD options.
    pub fn ia_pds(&self) -> impl Iterator<Item = IaPd<'a>> + use<'a> {
        self.ias()
            .filter_map(|ia| if let Ia::Pd(pd) = ia { Some(pd) } else { None })
    }

    /// Every lease of every IA, in wire order, with its binding options decoded.
    pub fn leases(&self) -> impl Iterator<Item = Lease<'a>> + use<'a> {
        self.ias().flat_map(|ia| ia.leases())
    }

    /// Checks the MUSTs of RFC 8156 §7.4 for a BNDUPD: OPTION_CLIENTID, OPTION_LQ_BASE_TIME,
    /// at least one IA, at least one IAADDR/IAPREFIX in each IA, and
    /// [`BindingInfo::check_update`] for each lease. Errors name what is missing (the failover
    /// engine answers MissingBindingInformation).
    pub fn check_update(&self) -> Result<()> {
        require(
            self.client_id(),
            "OPTION_CLIENT_DATA without OPTION_CLIENTID",
        )?;
        require(
            self.lq_base_time(),
            "OPTION_CLIENT_DATA without OPTION_LQ_BASE_TIME",
        )?;
        let mut any_ia = false;
        for ia in self.ias() {
            any_ia = true;
            let mut any_lease = false;
            for lease in ia.leases() {
                any_lease = true;
                lease.info.check_update(lease.lease.kind())?;
            }
            if !any_lease {
                return Err(Error::Malformed(match ia {
                    Ia::Na(_) => "IA_NA without OPTION_IAADDR",
                    Ia::Ta(_) => "IA_TA without OPTION_IAADDR",
                    Ia::Pd(_) => "IA_PD without OPTION_IAPREFIX",
                }));
            }
        }
        if !any_ia {
            return Err(Error::Malformed(
                "OPTION_CLIENT_DATA without IA_NA, IA_TA or IA_PD",
            ));
        }
        Ok(())
    }

    /// Checks the MUSTs of RFC 8156 §7.6 for a BNDREPLY: OPTION_CLIENTID and at least one IA,
    /// unless a client-level Status Code rejects the whole update (then the partner may not
    /// have been able to echo them).
    pub fn check_reply(&self) -> Result<()> {
        if self.status().is_some() {
            return Ok(());
        }
        require(
            self.client_id(),
            "OPTION_CLIENT_DATA without OPTION_CLIENTID",
        )?;
        if self.ias().next().is_none() {
            return Err(Error::Malformed(
                "OPTION_CLIENT_DATA without IA_NA, IA_TA or IA_PD",
            ));
        }
        Ok(())
    }

    /// The first option `code`, decoded (validated by `parse`, so a decoding error cannot
    /// happen on a parsed block and reads as absent).
    fn get<T>(&self, code: OptionCode, parse: impl FnOnce(&'a [u8]) -> Result<T>) -> Option<T> {
        all(&self.options)
            .find(|o| o.code == code)
            .and_then(|o| parse(o.data).ok())
    }
}

impl EmitOption for ClientData<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::CLIENT_DATA
    }
    fn data_len(&self) -> usize {
        self.options.wire_len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        self.options.emit(w)
    }
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    /// [`BindingInfo::parse`] as it was written first: one [`unique`] walk over the block per
    /// field, in field order. The one-pass parse must give the same answer for every block.
    fn parse_per_code<'a>(o: &Options<'a>) -> Result<BindingInfo<'a>> {
        use OptionCode as C;
        Ok(BindingInfo {
            status: unique(o, C::STATUS_CODE, "duplicate OPTION_STATUS_CODE", |d| {
                StatusCodeOption::parse(d)
            })?,
            vss: unique(o, C::VSS, "duplicate OPTION_VSS", Vss::parse)?,
            lq_base_time: unique(
                o,
                C::LQ_BASE_TIME,
                "duplicate OPTION_LQ_BASE_TIME",
                LqBaseTime::parse,
            )?,
            binding_status: unique(
                o,
                C::F_BINDING_STATUS,
                "duplicate OPTION_F_BINDING_STATUS",
                BindingStatus::parse,
            )?,
            start_time_of_state: unique(
                o,
                C::F_START_TIME_OF_STATE,
                "duplicate OPTION_F_START_TIME_OF_STATE",
                StartTimeOfState::parse,
            )?,
            state_expiration_time: unique(
                o,
                C::F_STATE_EXPIRATION_TIME,
                "duplicate OPTION_F_STATE_EXPIRATION_TIME",
                StateExpirationTime::parse,
            )?,
            clt_time: unique(o, C::CLT_TIME, "duplicate OPTION_CLT_TIME", CltTime::parse)?,
            partner_lifetime: unique(
                o,
                C::F_PARTNER_LIFETIME,
                "duplicate OPTION_F_PARTNER_LIFETIME",
                PartnerLifetime::parse,
            )?,
            partner_raw_clt_time: unique(
                o,
                C::F_PARTNER_RAW_CLT_TIME,
                "duplicate OPTION_F_PARTNER_RAW_CLT_TIME",
                PartnerRawCltTime::parse,
            )?,
            expiration_time: unique(
                o,
                C::F_EXPIRATION_TIME,
                "duplicate OPTION_F_EXPIRATION_TIME",
                ExpirationTime::parse,
            )?,
            client_fqdn: find_unique(o, C::CLIENT_FQDN, "duplicate OPTION_CLIENT_FQDN")?,
            dns_removal_info: unique(
                o,
                C::F_DNS_REMOVAL_INFO,
                "duplicate OPTION_F_DNS_REMOVAL_INFO",
                DnsRemovalInfo::parse,
            )?,
            partner_lifetime_sent: unique(
                o,
                C::F_PARTNER_LIFETIME_SENT,
                "duplicate OPTION_F_PARTNER_LIFETIME_SENT",
                PartnerLifetimeSent::parse,
            )?,
        })
    }

    /// The codes BindingInfo decodes, in field order, plus IAADDR and an unassigned code it
    /// must skip.
    const CODES: [OptionCode; 15] = [
        OptionCode::STATUS_CODE,
        OptionCode::VSS,
        OptionCode::LQ_BASE_TIME,
        OptionCode::F_BINDING_STATUS,
        OptionCode::F_START_TIME_OF_STATE,
        OptionCode::F_STATE_EXPIRATION_TIME,
        OptionCode::CLT_TIME,
        OptionCode::F_PARTNER_LIFETIME,
        OptionCode::F_PARTNER_RAW_CLT_TIME,
        OptionCode::F_EXPIRATION_TIME,
        OptionCode::CLIENT_FQDN,
        OptionCode::F_DNS_REMOVAL_INFO,
        OptionCode::F_PARTNER_LIFETIME_SENT,
        OptionCode::IAADDR,
        OptionCode(999),
    ];

    fn block(opts: &[(usize, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (i, data) in opts {
            b.extend_from_slice(&CODES[i % CODES.len()].0.to_be_bytes());
            b.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            b.extend_from_slice(data);
        }
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Every block (valid, malformed values, duplicates, unknown options, in any order)
        /// decodes to the same info or the same error as thirteen per-code walks.
        #[test]
        fn binding_info_one_pass_equals_per_code_walks(
            opts in proptest::collection::vec(
                (0..CODES.len(), proptest::collection::vec(any::<u8>(), 0..9)),
                0..20,
            )
        ) {
            let bytes = block(&opts);
            let o = Options::parse(&bytes).unwrap();
            prop_assert_eq!(BindingInfo::parse(&o), parse_per_code(&o));
        }
    }

    #[test]
    fn binding_info_refuses_a_duplicate_before_parsing_either_copy() {
        // Two OPTION_F_BINDING_STATUS, the first malformed (2 octets): the duplicate is named.
        let bytes = block(&[(3, vec![1, 2]), (3, vec![1])]);
        let o = Options::parse(&bytes).unwrap();
        assert_eq!(
            BindingInfo::parse(&o),
            Err(Error::Malformed("duplicate OPTION_F_BINDING_STATUS"))
        );
        // A well-formed block: every value where it belongs.
        let bytes = block(&[(4, vec![0, 0, 0, 7]), (3, vec![1]), (14, vec![9])]);
        let info = BindingInfo::parse(&Options::parse(&bytes).unwrap()).unwrap();
        assert_eq!(info.binding_status, Some(BindingStatus(1)));
        assert_eq!(info.start_time_of_state.map(|t| t.0.0), Some(7));
        assert_eq!(info.vss, None);
        assert_eq!(info.status, None);
    }
}

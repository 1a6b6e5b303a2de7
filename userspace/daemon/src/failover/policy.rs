//! A [`ServingPolicy`] shared with the XDP workers without a lock: encoded into one
//! [`AtomicU64`], stored by the main thread when the failover state changes and loaded by each
//! worker before it handles a frame (a load per frame; the engines are reconfigured only when
//! the value changed).

use std::sync::atomic::{AtomicU64, Ordering};

use tandem_lease::{AddressShare, PrefixShare, Responsiveness, ServingPolicy};

/// The policy cell (see the module docs).
#[derive(Debug)]
pub struct PolicyCell(AtomicU64);

impl PolicyCell {
    /// A cell holding `policy`.
    pub fn new(policy: ServingPolicy) -> Self {
        Self(AtomicU64::new(encode(policy)))
    }

    /// Publishes `policy`.
    pub fn store(&self, policy: ServingPolicy) {
        self.0.store(encode(policy), Ordering::Release);
    }

    /// The encoded policy, to compare with the last one applied.
    pub fn load_bits(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Bits 0–1 responsiveness, 2 new leases, 3–4 addresses, 5–6 prefixes, 7 MCLT present, 8 reuse
/// needs the partner's ack, 32–63 the MCLT.
pub fn encode(p: ServingPolicy) -> u64 {
    let r = match p.responsiveness {
        Responsiveness::Responsive => 0,
        Responsiveness::RenewResponsive => 1,
        Responsiveness::Unresponsive => 2,
    };
    let a = match p.addresses {
        AddressShare::All => 0,
        AddressShare::Odd => 1,
        AddressShare::Even => 2,
    };
    let x = match p.prefixes {
        PrefixShare::All => 0,
        PrefixShare::Free => 1,
        PrefixShare::FreeBackup => 2,
    };
    r | u64::from(p.new_leases) << 2
        | a << 3
        | x << 5
        | u64::from(p.mclt.is_some()) << 7
        | u64::from(p.reuse_needs_partner_ack) << 8
        | u64::from(p.reuse_wait.is_some()) << 9
        // The machine never sets both (the cap outside PARTNER-DOWN, the wait in it): one
        // 32-bit field holds whichever is present; with both, the larger (tested).
        | u64::from(match (p.mclt, p.reuse_wait) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(0),
        }) << 32
}

/// The policy of [`encode`]'s bits; a value no `encode` gives is unresponsive (never serve on
/// a policy we cannot read).
pub fn decode(bits: u64) -> ServingPolicy {
    let responsiveness = match bits & 3 {
        0 => Responsiveness::Responsive,
        1 => Responsiveness::RenewResponsive,
        2 => Responsiveness::Unresponsive,
        _ => return ServingPolicy::UNRESPONSIVE,
    };
    let addresses = match (bits >> 3) & 3 {
        0 => AddressShare::All,
        1 => AddressShare::Odd,
        2 => AddressShare::Even,
        _ => return ServingPolicy::UNRESPONSIVE,
    };
    let prefixes = match (bits >> 5) & 3 {
        0 => PrefixShare::All,
        1 => PrefixShare::Free,
        2 => PrefixShare::FreeBackup,
        _ => return ServingPolicy::UNRESPONSIVE,
    };
    ServingPolicy {
        responsiveness,
        new_leases: bits & (1 << 2) != 0,
        addresses,
        prefixes,
        mclt: (bits & (1 << 7) != 0).then_some(u32::try_from(bits >> 32).unwrap_or(u32::MAX)),
        reuse_needs_partner_ack: bits & (1 << 8) != 0,
        reuse_wait: (bits & (1 << 9) != 0).then_some(u32::try_from(bits >> 32).unwrap_or(u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use tandem_failover::{Role, StateName, machine};

    use super::*;

    #[test]
    fn policy_bits_round_trip_every_state_and_role_and_standalone() {
        let states = [
            StateName::Startup,
            StateName::Normal,
            StateName::CommunicationsInterrupted,
            StateName::PartnerDown,
            StateName::PotentialConflict,
            StateName::Recover,
            StateName::RecoverWait,
            StateName::RecoverDone,
            StateName::ResolutionInterrupted,
            StateName::ConflictDone,
        ];
        let mut all = vec![ServingPolicy::STANDALONE, ServingPolicy::UNRESPONSIVE];
        for role in [Role::Primary, Role::Secondary] {
            for s in states {
                for mclt in [30, 3600, u32::MAX] {
                    all.push(machine::serving_policy(role, s, mclt));
                }
            }
        }
        for p in all {
            assert_eq!(decode(encode(p)), p);
            let cell = PolicyCell::new(ServingPolicy::STANDALONE);
            cell.store(p);
            assert_eq!(decode(cell.load_bits()), p);
        }
        assert_eq!(decode(3), ServingPolicy::UNRESPONSIVE);
    }
}

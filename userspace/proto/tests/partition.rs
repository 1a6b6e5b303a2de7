//! Issue 4 sharding: engines partitioned by pool slot never allocate the same lease, hints
//! and reservations follow the rules of the contract, allocation stays bounded, and
//! `shard_of` routes every message of a client to the same shard.

mod common;

use std::collections::HashSet;
use std::net::Ipv6Addr;

use common::*;
use proptest::prelude::*;
use tandem_lease::{LeaseStore, MemStore};
use tandem_proto::{Counters, Engine, Outcome, duid_hash, shard_of};
use tandem_wire::dhcp::MessageType as T;

/// First address of the /64 address pool of subnet 2 (`2001:db8:2::/64`).
const POOL2: u128 = 0x2001_0db8_0002_0000_0000_0000_0000_0000;
/// The /40 PD pool of subnet 2, cut into /56s.
const PD2: u128 = 0x2001_0db8_4000_0000_0000_0000_0000_0000;
/// The /48 PD pool of subnet 2, cut into /60s.
const PD2_60: u128 = 0x2001_0db8_5000_0000_0000_0000_0000_0000;

fn partitioned<S: LeaseStore>(store: S, shard: u32, shards: u32) -> Harness<S> {
    let mut h = Harness::with_store(store);
    h.engine = Engine::new(config(), SERVER_DUID.to_vec()).with_partition(shard, shards);
    h
}

/// A Request for one IA_NA and one IA_PD (with optional hints), relayed from subnet 2.
fn relayed_request(duid: &[u8], na_hint: Option<Ipv6Addr>, pd_hint: Option<Ipv6Addr>) -> Vec<u8> {
    let na: Vec<Ipv6Addr> = na_hint.into_iter().collect();
    let pd: Vec<(Ipv6Addr, u8)> = pd_hint.map(|p| (p, 56)).into_iter().collect();
    let inner = msg(
        T::REQUEST,
        7,
        &[client_id(duid), server_id(), ia_na(1, &na), ia_pd(2, &pd)],
    );
    relay_forw(0, a("2001:db8:2::1"), a("fe80::5"), None, &inner)
}

/// Sends a relayed request and returns the address and prefix granted (if any).
fn grant<S: LeaseStore>(
    h: &mut Harness<S>,
    payload: &[u8],
) -> (Option<Ipv6Addr>, Option<Ipv6Addr>) {
    let (o, out) = h.send_on("eth9", payload);
    assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
    let (reply, _, _) = unwrap_relay(&out);
    let na = ia_nas(&reply)[0].leases.first().map(|l| l.0);
    let pd = ia_pds(&reply)[0].leases.first().map(|l| l.0);
    (na, pd)
}

fn na_offset(addr: Ipv6Addr) -> u128 {
    u128::from(addr) - POOL2
}

/// The slot of an address of subnet 2's pool: the pair of offsets 2m, 2m + 1 it is in.
fn na_slot(addr: Ipv6Addr) -> u128 {
    na_offset(addr) >> 1
}

/// Index of a delegated prefix within its PD pool of subnet 2 (/56s of the /40, /60s of
/// the /48).
fn pd_index(prefix: Ipv6Addr) -> u128 {
    let p = u128::from(prefix);
    if p >= PD2_60 {
        (p - PD2_60) >> (128 - 60)
    } else {
        (p - PD2) >> (128 - 56)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn partitioned_engines_random_clients_never_share_a_lease(
        duids in prop::collection::vec(prop::collection::vec(any::<u8>(), 3..24), 1..60),
        hints in prop::collection::vec(0u128..64, 1..60),
    ) {
        let mut shards = [partitioned(MemStore::new(), 0, 2), partitioned(MemStore::new(), 1, 2)];
        let mut addrs = HashSet::new();
        let mut prefixes = HashSet::new();
        let mut seen = HashSet::new();
        for (i, duid) in duids.iter().enumerate() {
            if !seen.insert(duid.clone()) {
                continue;
            }
            let hint = hints.get(i % hints.len()).copied().unwrap_or(0);
            let payload = relayed_request(
                duid,
                Some(Ipv6Addr::from(POOL2 + 1 + hint)),
                Some(Ipv6Addr::from(PD2 + (hint << 72))),
            );
            let k = shard_of(&payload, 2).unwrap();
            let h = &mut shards[k as usize];
            let (na, pd) = grant(h, &payload);
            let na = na.unwrap();
            let pd = pd.unwrap();
            prop_assert_eq!(na_slot(na) % 2, u128::from(k), "address {} from shard {}", na, k);
            prop_assert_eq!(pd_index(pd) % 2, u128::from(k), "prefix {} from shard {}", pd, k);
            prop_assert!(addrs.insert(na), "address {} given twice", na);
            prop_assert!(prefixes.insert(pd), "prefix {} given twice", pd);
        }
        let stored = shards[0].store.len() + shards[1].store.len();
        prop_assert_eq!(stored, 2 * seen.len());
    }
}

#[test]
fn partitioned_engine_hint_of_other_shard_ignored() {
    let mut h = partitioned(MemStore::new(), 0, 2);
    // Offsets 2 and 3 are slot 1 (shard 1's); offsets 4 and 5 are slot 2 (shard 0's).
    let foreign = Ipv6Addr::from(POOL2 + 3);
    let (na, _) = grant(
        &mut h,
        &relayed_request(&client_duid(1), Some(foreign), None),
    );
    let na = na.unwrap();
    assert_ne!(na, foreign);
    assert_eq!(na_slot(na) % 2, 0, "{na}");
    for own in [Ipv6Addr::from(POOL2 + 4), Ipv6Addr::from(POOL2 + 5)] {
        let (na, _) = grant(
            &mut h,
            &relayed_request(&own.octets()[10..], Some(own), None),
        );
        assert_eq!(na, Some(own));
    }
}

#[test]
fn partitioned_engine_small_pool_exhausts_only_its_class() {
    // Subnet 1's pool is ::100–::103 with ::101 reserved: slot 0 is {::100, ::101} (shard 0
    // of 2), slot 1 is {::102, ::103} (shard 1), so shard 0 has only ::100 to give and
    // shard 1 has ::102 and ::103.
    let request = |n: u8| {
        msg(
            T::REQUEST,
            1,
            &[client_id(&client_duid(n)), server_id(), ia_na(1, &[])],
        )
    };
    let mut zero = partitioned(MemStore::new(), 0, 2);
    assert_eq!(
        ia_nas(&zero.reply(&request(1)))[0].leases[0].0,
        a("2001:db8:1::100")
    );
    assert_eq!(
        ia_nas(&zero.reply(&request(2)))[0].status,
        Some(tandem_wire::dhcp::StatusCode::NO_ADDRS_AVAIL)
    );
    let mut one = partitioned(MemStore::new(), 1, 2);
    let mut got: Vec<Ipv6Addr> = (1..=2)
        .map(|n| ia_nas(&one.reply(&request(n)))[0].leases[0].0)
        .collect();
    got.sort();
    assert_eq!(got, [a("2001:db8:1::102"), a("2001:db8:1::103")]);
    assert_eq!(
        ia_nas(&one.reply(&request(3)))[0].status,
        Some(tandem_wire::dhcp::StatusCode::NO_ADDRS_AVAIL)
    );
}

#[test]
fn partitioned_engine_reservation_given_whatever_its_offset() {
    // ::101 (offset 1) is reserved; shard 0 of 2 still gives it to its client.
    let mut h = partitioned(MemStore::new(), 0, 2);
    let r = h.reply(&msg(
        T::REQUEST,
        1,
        &[client_id(RESERVED_DUID), server_id(), ia_na(1, &[])],
    ));
    assert_eq!(ia_nas(&r)[0].leases[0].0, a("2001:db8:1::101"));
}

#[test]
fn partitioned_engine_big_pools_allocate_with_few_store_lookups() {
    for (shard, shards) in [(0, 4), (3, 4), (5, 7)] {
        let mut h = partitioned(CountingStore::default(), shard, shards);
        assert_eq!(h.engine.partition(), (shard, shards));
        for n in 0..150u8 {
            h.store.gets.set(0);
            let (na, pd) = grant(&mut h, &relayed_request(&client_duid(n), None, None));
            assert_eq!(na_slot(na.unwrap()) % u128::from(shards), u128::from(shard));
            assert_eq!(
                pd_index(pd.unwrap()) % u128::from(shards),
                u128::from(shard)
            );
            assert!(h.store.gets.get() <= 64, "{} lookups", h.store.gets.get());
        }
        assert_eq!(h.store.inner.len(), 300);
    }
}

#[test]
fn partition_shard_taken_mod_shards_and_zero_means_one() {
    let e = Engine::new(config(), SERVER_DUID.to_vec());
    assert_eq!(e.partition(), (0, 1));
    assert_eq!(e.with_partition(5, 4).partition(), (1, 4));
    let e = Engine::new(config(), SERVER_DUID.to_vec()).with_partition(3, 0);
    assert_eq!(e.partition(), (0, 1));
}

#[test]
fn duid_hash_is_fnv1a_64_with_fmix64() {
    // FNV-1a 64 of "", "a", "foobar" is cbf29ce484222325, af63dc4c8601ec8c, 85944171f73967e8
    // (reference vectors); fmix64 of those. The hash is part of the state-directory format.
    assert_eq!(duid_hash(b""), 0xefd0_1f60_ba99_2926);
    assert_eq!(duid_hash(b"a"), 0x82a2_a958_a9be_ce5b);
    assert_eq!(duid_hash(b"foobar"), 0x2c22_1949_22d1_672b);
}

#[test]
fn duid_hash_llts_seconds_apart_spread_over_two_shards() {
    // DUID-LLTs of one MAC created 2 s apart differ in one byte by 2: plain FNV-1a would put
    // them all on the same shard of 2.
    let base = [
        0u8, 1, 0, 1, 0x32, 0x9f, 0x19, 0xd7, 0xd2, 0x57, 0x8e, 0x3c, 0xbb, 0xac,
    ];
    let mut per_shard = [0u32; 2];
    for i in 0..64u8 {
        let mut d = base;
        d[7] = i.wrapping_mul(2);
        per_shard[usize::try_from(duid_hash(&d) % 2).unwrap()] += 1;
    }
    assert!(
        per_shard.iter().all(|n| (20..=44).contains(n)),
        "{per_shard:?}"
    );
}

#[test]
fn shard_of_same_client_direct_and_relayed_agree() {
    let duid = client_duid(9);
    let expected = u32::try_from(duid_hash(&duid) % 5).unwrap();
    let solicit = msg(T::SOLICIT, 1, &[client_id(&duid), ia_na(1, &[])]);
    let renew = msg(T::RENEW, 2, &[client_id(&duid), server_id(), ia_na(1, &[])]);
    let relayed = relay_forw(0, a("2001:db8:2::1"), a("fe80::5"), None, &renew);
    let twice = relay_forw(1, a("::"), a("fe80::6"), Some(b"x"), &relayed);
    for p in [&solicit, &renew, &relayed, &twice] {
        assert_eq!(shard_of(p, 5), Some(expected));
    }
}

#[test]
fn shard_of_without_client_id_or_garbage_is_none() {
    let info = msg(T::INFORMATION_REQUEST, 1, &[]);
    assert_eq!(shard_of(&info, 4), None);
    assert_eq!(shard_of(&[0xff], 4), None);
    assert_eq!(shard_of(&[], 4), None);
    assert_eq!(shard_of(&[12, 0, 1], 4), None);
    // One shard: no parsing needed.
    assert_eq!(shard_of(&[0xff], 1), Some(0));
    assert_eq!(shard_of(&[0xff], 0), Some(0));
}

#[test]
fn counters_merge_adds_every_counter() {
    let mut h = Harness::new();
    h.reply(&msg(
        T::SOLICIT,
        1,
        &[client_id(&client_duid(1)), ia_na(1, &[])],
    ));
    h.send_on("eth0", &[0xff]);
    let mut total = Counters::default();
    total.merge(h.engine.counters());
    total.merge(h.engine.counters());
    assert_eq!(total.received(T::SOLICIT), 2);
    assert_eq!(total.replies(T::ADVERTISE), 2);
    assert_eq!(total.drops(tandem_proto::DropReason::Malformed), 2);
}

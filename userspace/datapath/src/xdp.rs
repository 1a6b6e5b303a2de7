//! The XDP program's loader: load and verify, attach, steer queues to AF_XDP sockets, read the
//! counters, relay the program's log records.
//!
//! The program object (`ebpf/xdp`, see `tandem_xdp_abi` for its maps and counters) is built by
//! this crate's build script and embedded in the binary, so there is nothing to install next to
//! it. Typical use:
//!
//! ```no_run
//! # fn main() -> Result<(), tandem_datapath::xdp::XdpError> {
//! use tandem_datapath::xdp::{AttachMode, LogLevel, XdpProgram};
//!
//! let mut program = XdpProgram::load(LogLevel::Info)?; // runs the kernel verifier
//! let mode = program.attach("eth0", AttachMode::Auto)?; // native, else generic with a warning
//! # let socket_fd = 3;
//! program.register_socket(0, socket_fd)?; // rx queue 0 → this AF_XDP socket
//! // ... serve; call `program.flush_log()` now and then ...
//! println!("mode={mode} {}", program.counters()?);
//! # Ok(()) }
//! ```
//!
//! Dropping the [`XdpProgram`] detaches the program from every interface and unloads it.
//!
//! Every error names the operation that failed and says what to do about it; privilege errors
//! (`EPERM`) become [`XdpError::PermissionDenied`].

use std::{
    error::Error as StdError,
    fmt, fs, io,
    os::fd::RawFd,
    path::{Path, PathBuf},
    str::FromStr,
};

use aya::{
    Ebpf, EbpfError, EbpfLoader, TestRun as _, TestRunOptions,
    maps::{MapError, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp, XdpMode, xdp::XdpLinkId},
};
use aya_log::EbpfLogger;
use tandem_xdp_abi::{
    COUNTER_COUNT, COUNTER_NAMES, COUNTERS_MAP, Counter, MAX_QUEUES, PROGRAM_NAME, XSKS_MAP,
};

/// The XDP program object, built for `bpfel-unknown-none` by `build.rs`.
static OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tandem-xdp"));

/// What the kernel-side log calls (aya-log) emit. A load-time constant of the program: disabled
/// levels are pruned by the verifier and cost nothing per packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// No kernel-side logging; the log ring buffer is not even read.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Rare events, e.g. DHCPv6 arriving on a queue without a socket (the default).
    #[default]
    Info,
    /// Everything the program logs at debug level.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// All levels, from quietest to loudest.
    pub const ALL: [Self; 6] = [
        Self::Off,
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// The lowercase name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    /// The value patched into the program's `AYA_LOG_LEVEL` global: 0 for off, otherwise
    /// `aya_log::Level as u8` (error = 1 … trace = 5).
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Error => aya_log::Level::Error as u8,
            Self::Warn => aya_log::Level::Warn as u8,
            Self::Info => aya_log::Level::Info as u8,
            Self::Debug => aya_log::Level::Debug as u8,
            Self::Trace => aya_log::Level::Trace as u8,
        }
    }
}

/// How to attach the program to an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Native first; if the driver refuses, generic with a `log::warn!`.
    #[default]
    Auto,
    /// Native (driver) mode only: the program runs in the driver before any skb exists.
    Native,
    /// Generic (SKB) mode only: works on every interface, slower. On veth it reports every
    /// frame on RX queue 0.
    Generic,
}

impl AttachMode {
    /// The lowercase name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }
}

/// The mode an attachment ended up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachedMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (SKB) XDP.
    Generic,
}

impl AttachedMode {
    /// `"native"` or `"generic"`, as printed in the `READY` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }

    const fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

/// Implements `Display` by `as_str` and, given the values, `FromStr` (the `as_str` name, in
/// any ASCII case) for the command-line enums.
macro_rules! enum_text {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    ($ty:ty, $all:expr, $what:literal, $expected:literal) => {
        enum_text!($ty);

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $all.into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| ParseEnumError {
                        what: $what,
                        value: s.into(),
                        expected: $expected,
                    })
            }
        }
    };
}

enum_text!(
    LogLevel,
    Self::ALL,
    "log level",
    "off|error|warn|info|debug|trace"
);
enum_text!(
    AttachMode,
    [Self::Auto, Self::Native, Self::Generic],
    "attach mode",
    "auto|native|generic"
);
enum_text!(AttachedMode);

/// A command-line value that names no [`LogLevel`] / [`AttachMode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`: expected one of {expected}")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

/// What the kernel reports about the loaded (verified, JIT-compiled) program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierStats {
    /// Program name as the kernel knows it (`tandem_xdp`).
    pub name: String,
    /// Kernel program id (as in `bpftool prog show id N`).
    pub id: u32,
    /// Program tag (SHA of the instructions), stable across loads of the same object.
    pub tag: u64,
    /// Instructions after verification and rewriting (`xlated_prog_len / 8`).
    pub xlated_insns: u32,
    /// Bytes of translated BPF code.
    pub xlated_bytes: u32,
    /// Bytes of JIT-compiled machine code (0 if the JIT is off).
    pub jited_bytes: u32,
    /// Instructions the verifier processed (all paths; kernel ≥ 5.16), the figure compared
    /// against the 1M complexity limit.
    pub verified_insns: Option<u32>,
    /// BTF object id of the program, if it carries BTF.
    pub btf_id: Option<u32>,
    /// Whether the kernel considers the license GPL-compatible.
    pub gpl_compatible: Option<bool>,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
}

impl fmt::Display for VerifierStats {
    /// `prog=tandem_xdp insns=N jited_bytes=N xlated_bytes=N verified_insns=N id=N tag=HEX
    /// btf_id=N gpl=BOOL maps=N`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            id,
            tag,
            xlated_insns,
            xlated_bytes,
            jited_bytes,
            verified_insns,
            btf_id,
            gpl_compatible,
            map_ids,
        } = self;
        write!(
            f,
            "prog={name} insns={xlated_insns} jited_bytes={jited_bytes} \
             xlated_bytes={xlated_bytes} verified_insns={} id={id} tag={tag:016x} btf_id={} \
             gpl={} maps={}",
            opt(verified_insns),
            opt(btf_id),
            opt(gpl_compatible),
            map_ids.len(),
        )
    }
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "unknown".into(), ToString::to_string)
}

/// The result of [`XdpProgram::test_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRunOutcome {
    /// The XDP action the program returned (`aya_ebpf` / kernel `xdp_action`: 1 = drop,
    /// 2 = pass, 4 = redirect).
    pub action: u32,
    /// Mean run time per repetition, as measured by the kernel.
    pub mean_duration: std::time::Duration,
}

impl TestRunOutcome {
    /// `XDP_PASS`.
    pub const XDP_PASS: u32 = 2;
    /// `XDP_REDIRECT`.
    pub const XDP_REDIRECT: u32 = 4;
}

/// A snapshot of the program's counters, summed over all CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    values: [u64; COUNTER_COUNT],
}

impl Counters {
    /// Counters with these values, indexed by [`Counter::index`].
    pub const fn from_values(values: [u64; COUNTER_COUNT]) -> Self {
        Self { values }
    }

    /// The value of one counter.
    pub const fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index() as usize]
    }

    /// `(name, value)` for every counter, in [`Counter`] order. Names are the bare ABI names
    /// (`seen`); printed with an `xdp_` prefix by [`Counters`]'s `Display`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        COUNTER_NAMES
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    /// Sum of the verdict counters ([`Counter::is_verdict`]); equals `seen` when no frame is in
    /// flight while the snapshot is taken.
    pub fn verdict_total(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_verdict())
            .fold(0u64, |sum, c| sum.saturating_add(self.get(*c)))
    }
}

impl fmt::Display for Counters {
    /// `xdp_seen=N xdp_redirected=N ...`, every counter, space-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "xdp_{name}={value}")?;
        }
        Ok(())
    }
}

/// Why an XDP operation failed. The messages name the operation and what to do.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The kernel refused for lack of privilege (`EPERM`).
    #[error(
        "permission denied while {op}: run as root (needs CAP_BPF and CAP_NET_ADMIN, or \
         CAP_SYS_ADMIN on older kernels): {}",
        chain(.source.as_ref())
    )]
    PermissionDenied {
        /// What we were doing.
        op: String,
        /// The underlying error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The embedded object could not be loaded (maps created, relocations applied).
    #[error(
        "loading the XDP object (creating its maps) failed: {} — check that the kernel \
         has BPF and XDP sockets enabled (CONFIG_BPF_SYSCALL, CONFIG_XDP_SOCKETS)",
        chain(.source)
    )]
    LoadObject {
        /// The aya error.
        #[source]
        source: EbpfError,
    },
    /// The kernel verifier (or the load syscall) rejected the program. The message includes
    /// the verifier log.
    #[error(
        "the kernel rejected the XDP program {PROGRAM_NAME} (BPF_PROG_LOAD): {} — this is \
         a bug in ebpf/xdp or a kernel too old for it",
        chain(.source)
    )]
    Verify {
        /// The aya error, carrying the verifier log.
        #[source]
        source: ProgramError,
    },
    /// The object lacks something the loader expects (the object and this crate disagree).
    #[error("the embedded XDP object has no {what} named `{name}`: rebuild tandem-datapath")]
    MissingInObject {
        /// "program" or "map".
        what: &'static str,
        /// The expected name.
        name: &'static str,
    },
    /// Starting the aya-log relay failed.
    #[error("starting the kernel log relay (aya-log ring buffer) failed: {}", chain(.source))]
    Logger {
        /// The aya-log error.
        #[source]
        source: aya_log::Error,
    },
    /// Reading program info from the kernel failed.
    #[error("reading the XDP program's info from the kernel failed: {}", chain(.source))]
    ProgramInfo {
        /// The aya error.
        #[source]
        source: ProgramError,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("test-running the XDP program on a {len}-byte frame failed: {}", chain(.source))]
    TestRun {
        /// Length of the frame.
        len: usize,
        /// The aya error.
        #[source]
        source: ProgramError,
    },
    /// There is no interface with that name (in this network namespace).
    #[error(
        "no interface named `{iface}` in this network namespace (see `ip link show`; inside a \
         namespace run under `ip netns exec NS ...`)"
    )]
    NoSuchInterface {
        /// The name asked for.
        iface: String,
    },
    /// Attaching failed.
    #[error("attaching XDP to {iface} in {mode} mode failed: {} — {hint}", chain(.source))]
    Attach {
        /// Interface name.
        iface: String,
        /// The mode that was tried (for [`AttachMode::Auto`], the generic fallback).
        mode: AttachedMode,
        /// The aya error.
        #[source]
        source: ProgramError,
        /// What to do about it.
        hint: &'static str,
    },
    /// Detaching failed, or the program was not attached to that interface.
    #[error("detaching XDP from {iface} failed: {reason}")]
    Detach {
        /// Interface name.
        iface: String,
        /// Why.
        reason: String,
    },
    /// An RX queue index beyond `XSKS`.
    #[error(
        "rx queue {queue} is out of range: the XSKS map holds queues 0..{MAX_QUEUES}; reduce \
         the number of queues (ethtool -L IF combined N)"
    )]
    QueueOutOfRange {
        /// The queue asked for.
        queue: u32,
    },
    /// A map operation failed.
    #[error("{op} failed: {}", chain(.source))]
    Map {
        /// What we were doing.
        op: String,
        /// The aya error.
        #[source]
        source: MapError,
    },
}

/// Displays an error with its whole source chain (`outer: inner: errno text`), skipping
/// sources whose text the outer messages already contain. aya's errors often keep the errno
/// only in a source (`` `bpf_link_create` failed `` → "Device or resource busy").
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Chain<'a> {
    Chain(err)
}

struct Chain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut next = self.0.source();
        while let Some(err) = next {
            let part = err.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            next = err.source();
        }
        f.write_str(&text)
    }
}

/// The loaded XDP program: owns the aya [`Ebpf`] (maps, program, attachments) and the aya-log
/// relay. Dropping it detaches and unloads everything.
pub struct XdpProgram {
    ebpf: Ebpf,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    links: Vec<(String, AttachedMode, XdpLinkId)>,
}

impl fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpProgram")
            .field("logging", &self.logger.is_some())
            .field(
                "attached",
                &self
                    .links
                    .iter()
                    .map(|(i, m, _)| (i, m))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl XdpProgram {
    /// Loads the embedded program into the kernel and runs the verifier, without attaching it.
    /// `log_level` is patched into the program before verification (see [`LogLevel`]); unless it
    /// is [`LogLevel::Off`], the records are relayed to the `log` crate by [`Self::flush_log`].
    pub fn load(log_level: LogLevel) -> Result<Self, XdpError> {
        let level = log_level.as_u8();
        let mut ebpf = EbpfLoader::new()
            // must_exist = false: the global is absent if the program has no log calls.
            .override_global(aya_log::LEVEL, &level, false)
            .load(OBJ)
            .map_err(|source| {
                if is_eperm(&source) {
                    permission_denied("creating the XDP program's maps", source)
                } else {
                    XdpError::LoadObject { source }
                }
            })?;

        // The logger takes the ring buffer map; it must stay alive while the program is loaded
        // (the program references the map's fd), so keep it even if never flushed.
        let logger = match log_level {
            LogLevel::Off => None,
            _ => Some(EbpfLogger::init(&mut ebpf).map_err(|source| XdpError::Logger { source })?),
        };

        let program = xdp_mut(&mut ebpf)?;
        program.load().map_err(|source| {
            if is_eperm(&source) {
                permission_denied("loading the XDP program (BPF_PROG_LOAD)", source)
            } else {
                XdpError::Verify { source }
            }
        })?;
        Ok(Self {
            ebpf,
            logger,
            links: Vec::new(),
        })
    }

    /// What the kernel reports about the verified program: instruction counts, JIT size, ids.
    pub fn verifier_stats(&self) -> Result<VerifierStats, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or(XdpError::MissingInObject {
                what: "program",
                name: PROGRAM_NAME,
            })?;
        let info = program
            .info()
            .map_err(|source| XdpError::ProgramInfo { source })?;
        let xlated_bytes = info.size_translated().unwrap_or(0);
        let map_ids = info
            .map_ids()
            .map_err(|source| XdpError::ProgramInfo { source })?;
        Ok(VerifierStats {
            name: info.name_as_str().unwrap_or(PROGRAM_NAME).to_owned(),
            id: info.id(),
            tag: info.tag(),
            xlated_insns: xlated_bytes / 8,
            xlated_bytes,
            jited_bytes: info.size_jitted(),
            verified_insns: info.verified_instruction_count(),
            btf_id: info.btf_id(),
            gpl_compatible: info.gpl_compatible(),
            map_ids: map_ids.unwrap_or_default(),
        })
    }

    /// Attaches the program to `iface`. [`AttachMode::Auto`] tries native mode and falls back
    /// to generic mode with a `log::warn!` naming the native error. Returns the mode in effect.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<AttachedMode, XdpError> {
        check_interface(iface)?;
        let attached = match mode {
            AttachMode::Native => self.attach_as(iface, AttachedMode::Native)?,
            AttachMode::Generic => self.attach_as(iface, AttachedMode::Generic)?,
            AttachMode::Auto => match self.attach_as(iface, AttachedMode::Native) {
                Ok(mode) => mode,
                Err(XdpError::Attach { source, .. }) => {
                    log::warn!(
                        "native XDP is not available on {iface} ({}); falling back to generic \
                         mode",
                        chain(&source)
                    );
                    self.attach_as(iface, AttachedMode::Generic)?
                }
                Err(other) => return Err(other),
            },
        };
        Ok(attached)
    }

    fn attach_as(&mut self, iface: &str, mode: AttachedMode) -> Result<AttachedMode, XdpError> {
        let program = xdp_mut(&mut self.ebpf)?;
        match program.attach(iface, mode.xdp_mode()) {
            Ok(link) => {
                self.links.push((iface.to_owned(), mode, link));
                Ok(mode)
            }
            Err(ProgramError::UnknownInterface { .. }) => Err(XdpError::NoSuchInterface {
                iface: iface.to_owned(),
            }),
            Err(source) if is_eperm(&source) => Err(permission_denied(
                &format!("attaching XDP to {iface} in {mode} mode"),
                source,
            )),
            Err(source) => Err(XdpError::Attach {
                iface: iface.to_owned(),
                mode,
                hint: attach_hint(mode, errno(&source)),
                source,
            }),
        }
    }

    /// Detaches the program from `iface` (every attachment made by [`Self::attach`] there).
    pub fn detach(&mut self, iface: &str) -> Result<(), XdpError> {
        let (matching, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|(name, _, _)| name == iface);
        self.links = rest;
        if matching.is_empty() {
            return Err(XdpError::Detach {
                iface: iface.to_owned(),
                reason: "the program is not attached there".into(),
            });
        }
        let program = xdp_mut(&mut self.ebpf)?;
        for (_, _, link) in matching {
            program.detach(link).map_err(|e| XdpError::Detach {
                iface: iface.to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The interfaces the program is attached to, with their modes.
    pub fn attachments(&self) -> impl Iterator<Item = (&str, AttachedMode)> + '_ {
        self.links
            .iter()
            .map(|(iface, mode, _)| (iface.as_str(), *mode))
    }

    /// Steers RX queue `queue` to the AF_XDP socket `fd` (`XSKS[queue] = fd`). The socket must
    /// be bound to the same interface and queue, or the kernel drops the redirected frames.
    pub fn register_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        let op = || format!("registering AF_XDP socket fd {fd} for rx queue {queue} in {XSKS_MAP}");
        self.xsks(queue, op)?
            .set(queue, fd, 0)
            .map_err(|source| map_error(op(), source))
    }

    /// Removes the socket of RX queue `queue` from `XSKS`; its DHCPv6 frames go to the kernel
    /// again (counted as `no_socket`). Removing an empty slot is not an error.
    pub fn unregister_socket(&mut self, queue: u32) -> Result<(), XdpError> {
        let op = || format!("removing the AF_XDP socket of rx queue {queue} from {XSKS_MAP}");
        match self.xsks(queue, op)?.unset(queue) {
            Ok(()) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(map_error(op(), source)),
        }
    }

    fn xsks(
        &mut self,
        queue: u32,
        op: impl Fn() -> String,
    ) -> Result<XskMap<&mut aya::maps::MapData>, XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange { queue });
        }
        let map = self
            .ebpf
            .map_mut(XSKS_MAP)
            .ok_or(XdpError::MissingInObject {
                what: "map",
                name: XSKS_MAP,
            })?;
        XskMap::try_from(map).map_err(|source| map_error(op(), source))
    }

    /// Reads every counter and sums it over all CPUs.
    pub fn counters(&self) -> Result<Counters, XdpError> {
        let op = || format!("reading the {COUNTERS_MAP} map");
        let map = self
            .ebpf
            .map(COUNTERS_MAP)
            .ok_or(XdpError::MissingInObject {
                what: "map",
                name: COUNTERS_MAP,
            })?;
        let array =
            PerCpuArray::<_, u64>::try_from(map).map_err(|source| map_error(op(), source))?;
        let mut values = [0u64; COUNTER_COUNT];
        for counter in Counter::ALL {
            let per_cpu = array
                .get(&counter.index(), 0)
                .map_err(|source| map_error(op(), source))?;
            values[counter.index() as usize] =
                per_cpu.iter().fold(0u64, |sum, v| sum.wrapping_add(*v));
        }
        Ok(Counters { values })
    }

    /// Runs the loaded program on `frame` `repeat` times in the kernel (`BPF_PROG_TEST_RUN`),
    /// without attaching it anywhere: the XDP action it returns (`XDP_PASS` = 2,
    /// `XDP_REDIRECT` = 4) and the mean run time. The counters count these runs like real
    /// frames. The frame is seen on RX queue 0 of no interface, so a DHCPv6 frame ends as
    /// `no_socket` unless queue 0 has a socket. The kernel refuses frames shorter than an
    /// Ethernet header (`EINVAL`).
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestRunOutcome, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or(XdpError::MissingInObject {
                what: "program",
                name: PROGRAM_NAME,
            })?;
        let mut options = TestRunOptions::new();
        options.data_in = Some(frame);
        options.repeat = repeat.max(1);
        let result = program.test_run(options).map_err(|source| {
            if is_eperm(&source) {
                permission_denied("test-running the XDP program (BPF_PROG_TEST_RUN)", source)
            } else {
                XdpError::TestRun {
                    len: frame.len(),
                    source,
                }
            }
        })?;
        Ok(TestRunOutcome {
            action: result.return_value,
            mean_duration: result.duration,
        })
    }

    /// Relays the program's pending log records (aya-log ring buffer, 128 KiB; records are
    /// dropped when it fills between calls) to the `log` crate, target `tandem_xdp`. Call it
    /// every few tens of milliseconds. Does nothing when loaded with [`LogLevel::Off`].
    pub fn flush_log(&mut self) {
        if let Some(logger) = &mut self.logger {
            logger.flush();
        }
    }
}

/// The number of RX queues of `iface`, counted from `/sys/class/net/IF/queues/rx-*`.
///
/// sysfs shows the network namespace it was mounted in (`ip netns exec` remounts it), so call
/// this from a process that runs in the interface's namespace.
pub fn rx_queue_count(iface: &str) -> io::Result<u32> {
    let dir = queues_dir(iface)?;
    let entries = fs::read_dir(&dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            no_such_interface_io(iface)
        } else {
            io::Error::new(e.kind(), format!("reading {}: {e}", dir.display()))
        }
    })?;
    let mut count = 0u32;
    for entry in entries {
        let entry = entry
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", dir.display())))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("rx-"))
        {
            count = count.saturating_add(1);
        }
    }
    Ok(count)
}

fn queues_dir(iface: &str) -> io::Result<PathBuf> {
    if !is_valid_ifname(iface) {
        return Err(no_such_interface_io(iface));
    }
    Ok(Path::new("/sys/class/net").join(iface).join("queues"))
}

fn no_such_interface_io(iface: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        XdpError::NoSuchInterface {
            iface: iface.into(),
        },
    )
}

/// Linux interface names: 1..IFNAMSIZ-1 bytes, no `/`, no NUL, no whitespace, not `.`/`..`.
fn is_valid_ifname(iface: &str) -> bool {
    !iface.is_empty()
        && iface.len() < libc::IFNAMSIZ
        && iface != "."
        && iface != ".."
        && !iface
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
}

/// Resolves `iface` up front: aya panics on names with NUL bytes, and the fallback in
/// [`AttachMode::Auto`] must not hide a typo behind two attach errors.
fn check_interface(iface: &str) -> Result<(), XdpError> {
    let missing = || XdpError::NoSuchInterface {
        iface: iface.to_owned(),
    };
    if !is_valid_ifname(iface) {
        return Err(missing());
    }
    crate::iface::interface_index(iface)
        .map(|_| ())
        .ok_or_else(missing)
}

fn xdp_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM_NAME)
        .and_then(|p| p.try_into().ok())
        .ok_or(XdpError::MissingInObject {
            what: "program",
            name: PROGRAM_NAME,
        })
}

fn map_error(op: String, source: MapError) -> XdpError {
    if is_eperm(&source) {
        permission_denied(&op, source)
    } else {
        XdpError::Map { op, source }
    }
}

fn permission_denied(op: &str, source: impl StdError + Send + Sync + 'static) -> XdpError {
    XdpError::PermissionDenied {
        op: op.to_owned(),
        source: Box::new(source),
    }
}

/// The first OS error code in `err`'s source chain (aya nests `io::Error`s in several layers).
fn errno(err: &(dyn StdError + 'static)) -> Option<i32> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(code) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(code);
        }
        if let Some(aya::sys::SyscallError { io_error, .. }) = e.downcast_ref()
            && let Some(code) = io_error.raw_os_error()
        {
            return Some(code);
        }
        current = e.source();
    }
    None
}

fn is_eperm(err: &(dyn StdError + 'static)) -> bool {
    errno(err) == Some(libc::EPERM)
}

/// What to tell the operator when attaching in `mode` failed with `errno`.
fn attach_hint(mode: AttachedMode, errno: Option<i32>) -> &'static str {
    match (mode, errno) {
        (_, Some(libc::EBUSY | libc::EEXIST)) => {
            "another XDP program is already attached there (see `ip link show IF`); remove it \
             with `ip link set dev IF xdp off` or stop the process that owns it"
        }
        (AttachedMode::Native, Some(libc::EOPNOTSUPP)) => {
            "the driver does not support native XDP; use --mode generic"
        }
        (AttachedMode::Native, Some(libc::ERANGE | libc::EINVAL)) => {
            "the driver refused native XDP (MTU too large for XDP, LRO on, or too few queues); \
             fix that or use --mode generic"
        }
        (AttachedMode::Native, _) => "the driver may not support native XDP; use --mode generic",
        (AttachedMode::Generic, _) => {
            "generic XDP should work on any interface; check `dmesg` and that the interface is \
             not a bond/team slave"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_program_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<XdpProgram>();
        assert_send::<XdpError>();
    }

    #[test]
    fn rx_queue_count_loopback_is_one() {
        assert_eq!(rx_queue_count("lo").unwrap(), 1);
    }

    #[test]
    fn rx_queue_count_unknown_interface_names_it() {
        let err = rx_queue_count("tandem-nope0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string()
                .contains("no interface named `tandem-nope0`"),
            "{err}"
        );
    }

    #[test]
    fn rx_queue_count_path_like_names_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "../lo",
            "lo/queues",
            "a\0b",
            "eth 0",
            "sixteen-chars-xx",
        ] {
            let err = rx_queue_count(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{bad:?}");
        }
    }

    #[test]
    fn check_interface_loopback_exists_and_garbage_does_not() {
        assert!(check_interface("lo").is_ok());
        for bad in ["tandem-nope0", "a\0b", ""] {
            let err = check_interface(bad).unwrap_err();
            assert!(
                matches!(err, XdpError::NoSuchInterface { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn log_level_parses_every_cli_name_and_rejects_others() {
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>().unwrap(), level);
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!("INFO".parse::<LogLevel>().unwrap(), LogLevel::Info);
        let err = "verbose".parse::<LogLevel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown log level `verbose`: expected one of off|error|warn|info|debug|trace"
        );
    }

    #[test]
    fn log_level_values_match_aya_log() {
        assert_eq!(LogLevel::Off.as_u8(), 0);
        let values: Vec<u8> = LogLevel::ALL.iter().map(|l| l.as_u8()).collect();
        assert_eq!(values, [0, 1, 2, 3, 4, 5]);
        assert_eq!(LogLevel::default(), LogLevel::Info);
    }

    #[test]
    fn attach_mode_parses_cli_names() {
        assert_eq!("auto".parse::<AttachMode>().unwrap(), AttachMode::Auto);
        assert_eq!("native".parse::<AttachMode>().unwrap(), AttachMode::Native);
        assert_eq!(
            "Generic".parse::<AttachMode>().unwrap(),
            AttachMode::Generic
        );
        let err = "driver".parse::<AttachMode>().unwrap_err();
        assert!(err.to_string().contains("auto|native|generic"), "{err}");
        assert_eq!(AttachedMode::Native.to_string(), "native");
        assert_eq!(AttachedMode::Generic.to_string(), "generic");
    }

    #[test]
    fn counters_display_prefixes_every_name_in_order() {
        let mut values = [0u64; COUNTER_COUNT];
        for (i, v) in values.iter_mut().enumerate() {
            *v = i as u64 * 10;
        }
        let counters = Counters::from_values(values);
        let text = counters.to_string();
        let fields: Vec<&str> = text.split(' ').collect();
        assert_eq!(fields.len(), COUNTER_COUNT);
        assert_eq!(fields[0], "xdp_seen=0");
        assert_eq!(fields[1], "xdp_redirected=10");
        assert_eq!(
            fields[COUNTER_COUNT - 1],
            format!("xdp_ext_hdr={}", (COUNTER_COUNT - 1) * 10)
        );
        assert_eq!(counters.get(Counter::NoSocket), 20);
        assert_eq!(counters.iter().nth(3), Some(("pass_not_ipv6", 30)));
    }

    #[test]
    fn counters_verdict_total_skips_observations() {
        let mut values = [0u64; COUNTER_COUNT];
        values[Counter::Seen.index() as usize] = 7;
        values[Counter::Redirected.index() as usize] = 3;
        values[Counter::PassNotUdp.index() as usize] = 4;
        values[Counter::Vlan.index() as usize] = 2;
        values[Counter::ExtHdr.index() as usize] = 1;
        let counters = Counters::from_values(values);
        assert_eq!(counters.verdict_total(), 7);
        assert_eq!(counters.verdict_total(), counters.get(Counter::Seen));
    }

    #[test]
    fn attach_error_native_unsupported_suggests_generic() {
        let err = XdpError::Attach {
            iface: "eth0".into(),
            mode: AttachedMode::Native,
            source: ProgramError::NotLoaded,
            hint: attach_hint(AttachedMode::Native, Some(libc::EOPNOTSUPP)),
        };
        let text = err.to_string();
        assert!(
            text.starts_with("attaching XDP to eth0 in native mode failed: "),
            "{text}"
        );
        assert!(text.ends_with("use --mode generic"), "{text}");
    }

    #[test]
    fn attach_hint_busy_interface_says_how_to_free_it() {
        for mode in [AttachedMode::Native, AttachedMode::Generic] {
            assert!(attach_hint(mode, Some(libc::EBUSY)).contains("xdp off"));
        }
        assert!(attach_hint(AttachedMode::Generic, Some(libc::EINVAL)).contains("dmesg"));
    }

    #[test]
    fn errno_found_through_nested_aya_errors() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let nested = ProgramError::SyscallError(aya::sys::SyscallError {
            call: "bpf_link_create",
            io_error: eperm,
        });
        assert_eq!(errno(&nested), Some(libc::EPERM));
        assert!(is_eperm(&nested));
        let map = MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: io::Error::from_raw_os_error(libc::EBADF),
        });
        assert_eq!(errno(&map), Some(libc::EBADF));
        assert!(!is_eperm(&map));
        assert_eq!(errno(&ProgramError::NotLoaded), None);
    }

    #[test]
    fn attach_error_shows_errno_hidden_in_source() {
        let err = XdpError::Attach {
            iface: "veth0".into(),
            mode: AttachedMode::Generic,
            source: ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_link_create",
                io_error: io::Error::from_raw_os_error(libc::EBUSY),
            }),
            hint: attach_hint(AttachedMode::Generic, Some(libc::EBUSY)),
        };
        let text = err.to_string();
        assert!(
            text.starts_with(
                "attaching XDP to veth0 in generic mode failed: `bpf_link_create` failed: Device \
                 or resource busy (os error 16) — another XDP program"
            ),
            "{text}"
        );
    }

    #[test]
    fn chain_skips_sources_already_in_the_message() {
        let inner = io::Error::from_raw_os_error(libc::ENOENT);
        let outer = io::Error::other(format!("opening x: {inner}"));
        assert_eq!(chain(&outer).to_string(), format!("opening x: {inner}"));
    }

    #[test]
    fn permission_error_tells_to_run_as_root() {
        let err = map_error(
            "registering".into(),
            MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_update_elem",
                io_error: io::Error::from_raw_os_error(libc::EPERM),
            }),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("permission denied while registering: run as root"),
            "{text}"
        );
        assert!(
            text.contains("CAP_BPF") && text.contains("CAP_NET_ADMIN"),
            "{text}"
        );
    }

    #[test]
    fn queue_out_of_range_names_the_limit() {
        let text = XdpError::QueueOutOfRange { queue: 64 }.to_string();
        assert!(text.starts_with("rx queue 64 is out of range"), "{text}");
        assert!(text.contains("0..64"), "{text}");
    }

    #[test]
    fn embedded_object_is_a_bpf_elf_with_our_names() {
        assert_eq!(&OBJ[..4], b"\x7fELF");
        // e_machine (offset 18, little-endian) = EM_BPF (247).
        assert_eq!(u16::from_le_bytes([OBJ[18], OBJ[19]]), 247);
        let contains = |needle: &[u8]| OBJ.windows(needle.len()).any(|w| w == needle);
        for name in [
            PROGRAM_NAME,
            XSKS_MAP,
            COUNTERS_MAP,
            "AYA_LOG_LEVEL",
            "license",
        ] {
            assert!(contains(name.as_bytes()), "object lacks {name}");
        }
        assert!(contains(b"Dual MIT/GPL\0"));
    }

    #[test]
    fn verifier_stats_display_starts_with_contract_fields() {
        let stats = VerifierStats {
            name: "tandem_xdp".into(),
            id: 42,
            tag: 0xabc,
            xlated_insns: 100,
            xlated_bytes: 800,
            jited_bytes: 500,
            verified_insns: Some(1234),
            btf_id: None,
            gpl_compatible: Some(true),
            map_ids: vec![1, 2, 3],
        };
        assert_eq!(
            stats.to_string(),
            "prog=tandem_xdp insns=100 jited_bytes=500 xlated_bytes=800 verified_insns=1234 \
             id=42 tag=0000000000000abc btf_id=unknown gpl=true maps=3"
        );
    }
}

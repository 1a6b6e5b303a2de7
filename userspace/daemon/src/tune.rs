//! NIC queue and IRQ affinity inspection for `tandem tune show`: the RX queues of an
//! interface (`/sys/class/net/IF/queues/rx-N`), the interrupts of its queues (from
//! `/proc/interrupts`, matched by interface name, PCI device or MSI vector) and their CPU
//! affinity (`/proc/irq/N/smp_affinity_list`); and checks of core lists against the CPUs this
//! process may use ([`tandem_datapath::sys::cpu::allowed_cores`]).

use std::fs;
use std::io;
use std::path::Path;

/// One numbered line of `/proc/interrupts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterruptLine {
    /// The IRQ number.
    pub irq: u32,
    /// Interrupts taken per CPU (one column per CPU of the header).
    pub per_cpu: Vec<u64>,
    /// The rest of the line: chip, hardware IRQ, trigger, action names (e.g.
    /// `IR-PCI-MSI 524289-edge      eth0-TxRx-0`).
    pub description: String,
}

impl InterruptLine {
    /// The action names of the line (the device names that requested the IRQ): the last
    /// whitespace-separated field, or several when they are `, `-separated.
    pub fn actions(&self) -> Vec<&str> {
        let mut out = Vec::new();
        // Actions come last; several are joined by ", ". Walk back from the end while the
        // previous token ends with a comma.
        let tokens: Vec<&str> = self.description.split_whitespace().collect();
        let mut i = tokens.len();
        while let Some(prev) = i.checked_sub(1) {
            let Some(tok) = tokens.get(prev) else { break };
            let is_last = prev + 1 == tokens.len();
            if !is_last && !tok.ends_with(',') {
                break;
            }
            out.push(tok.trim_end_matches(','));
            i = prev;
        }
        out.reverse();
        out
    }
}

/// Parses the text of `/proc/interrupts`: the numbered lines only (`NMI`, `LOC` … are not
/// device interrupts). Lines that do not parse are skipped.
pub fn parse_interrupts(text: &str) -> Vec<InterruptLine> {
    let mut lines = text.lines();
    let cpus = lines
        .next()
        .map_or(0, |header| header.split_whitespace().count());
    let mut out = Vec::new();
    for line in lines {
        let Some((irq, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(irq) = irq.trim().parse::<u32>() else {
            continue;
        };
        let mut rest = rest;
        let mut per_cpu = Vec::with_capacity(cpus);
        for _ in 0..cpus {
            let trimmed = rest.trim_start();
            let end = trimmed
                .find(|c: char| c.is_whitespace())
                .unwrap_or(trimmed.len());
            let (field, tail) = trimmed.split_at(end);
            match field.parse::<u64>() {
                Ok(n) => {
                    per_cpu.push(n);
                    rest = tail;
                }
                Err(_) => break,
            }
        }
        out.push(InterruptLine {
            irq,
            per_cpu,
            description: rest.trim().to_owned(),
        });
    }
    out
}

/// How an interface is attached, for matching its interrupts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceIds {
    /// The device behind the interface (`basename` of `/sys/class/net/IF/device`): a PCI
    /// address such as `0000:3b:00.0`, or `virtio0`; `None` for a virtual interface.
    pub device: Option<String>,
    /// MSI/MSI-X vectors of the device (`…/device/msi_irqs`, or its parent's for virtio).
    pub msi_irqs: Vec<u32>,
}

/// The lines of `table` that belong to `iface`: the IRQ is one of the device's MSI vectors,
/// or an action is named after the interface (`eth0`, `eth0-TxRx-0`, `eth0@…`), after the
/// device (`virtio0-input.0`) or names its PCI address (`mlx5_comp0@pci:0000:3b:00.0`).
pub fn irqs_for<'a>(
    table: &'a [InterruptLine],
    iface: &str,
    ids: &DeviceIds,
) -> Vec<&'a InterruptLine> {
    let named_after = |action: &str, name: &str| {
        action
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '@', ':', '.']))
    };
    table
        .iter()
        .filter(|line| {
            ids.msi_irqs.contains(&line.irq)
                || line.actions().iter().any(|a| {
                    named_after(a, iface)
                        || ids.device.as_deref().is_some_and(|dev| {
                            named_after(a, dev) || a.ends_with(&format!("@pci:{dev}"))
                        })
                })
        })
        .collect()
}

/// The interrupts of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Irqs {
    /// No device behind the interface (veth, bridge, loopback …).
    Virtual,
    /// The interrupts found, with their affinity (`None`: unreadable).
    Found(Vec<Irq>),
    /// A device, but no interrupt in `/proc/interrupts` could be tied to it.
    NotFound,
    /// `/proc/interrupts` could not be read.
    Unreadable(String),
}

/// One interrupt of a NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    /// IRQ number.
    pub irq: u32,
    /// Its action names, comma-separated.
    pub name: String,
    /// `/proc/irq/N/smp_affinity_list` (e.g. `0-3`), `None` if unreadable.
    pub affinity: Option<String>,
}

/// What `tune show` prints about one configured interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicReport {
    /// Interface name.
    pub iface: String,
    /// Its RX queue numbers, or why they could not be listed.
    pub rx_queues: Result<Vec<u32>, String>,
    /// Its interrupts.
    pub irqs: Irqs,
}

/// The RX queues of `iface` in `sys_net` (normally `/sys/class/net`), sorted.
///
/// # Errors
/// The queues directory cannot be read (no such interface in this namespace).
pub fn rx_queues(sys_net: &Path, iface: &str) -> io::Result<Vec<u32>> {
    let mut queues: Vec<u32> = fs::read_dir(sys_net.join(iface).join("queues"))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("rx-")?.parse().ok())
        .collect();
    queues.sort_unstable();
    Ok(queues)
}

/// The device ids of `iface` under `sys_net` (normally `/sys/class/net`).
pub fn device_ids(sys_net: &Path, iface: &str) -> DeviceIds {
    let device_link = sys_net.join(iface).join("device");
    let Ok(device_path) = fs::canonicalize(&device_link) else {
        return DeviceIds::default();
    };
    let device = device_path
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned);
    let list = |dir: &Path| -> Vec<u32> {
        fs::read_dir(dir.join("msi_irqs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut msi_irqs = list(&device_path);
    // virtio-net: the interface's device is `virtioN`, the MSI vectors belong to the PCI
    // function above it.
    if msi_irqs.is_empty()
        && let Some(parent) = device_path.parent()
        && device.as_deref().is_some_and(|d| d.starts_with("virtio"))
    {
        msi_irqs = list(parent);
    }
    msi_irqs.sort_unstable();
    DeviceIds { device, msi_irqs }
}

/// Inspects `iface` on this host: RX queues, interrupts and their affinity.
pub fn inspect(iface: &str) -> NicReport {
    let sys_net = Path::new("/sys/class/net");
    let rx = rx_queues(sys_net, iface).map_err(|e| format!("cannot list its RX queues: {e}"));
    let ids = device_ids(sys_net, iface);
    let irqs = if ids.device.is_none() {
        Irqs::Virtual
    } else {
        match fs::read_to_string("/proc/interrupts") {
            Err(e) => Irqs::Unreadable(format!("reading /proc/interrupts: {e}")),
            Ok(text) => {
                let table = parse_interrupts(&text);
                let found: Vec<Irq> = irqs_for(&table, iface, &ids)
                    .into_iter()
                    .map(|line| Irq {
                        irq: line.irq,
                        name: line.actions().join(","),
                        affinity: fs::read_to_string(format!(
                            "/proc/irq/{}/smp_affinity_list",
                            line.irq
                        ))
                        .ok()
                        .map(|s| s.trim().to_owned()),
                    })
                    .collect();
                if found.is_empty() {
                    Irqs::NotFound
                } else {
                    Irqs::Found(found)
                }
            }
        }
    };
    NicReport {
        iface: iface.to_owned(),
        rx_queues: rx,
        irqs,
    }
}

/// Checks that every core of `cores` is one of `allowed`; the error names the first that is
/// not and lists the allowed ones.
///
/// # Errors
/// A core outside `allowed` (an empty `allowed` accepts everything: the kernel did not say).
pub fn check_cores(cores: &[usize], allowed: &[usize]) -> Result<(), String> {
    if allowed.is_empty() {
        return Ok(());
    }
    match cores.iter().find(|c| !allowed.contains(c)) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "core {bad} is not one this process may run on (allowed: {})",
            compress_list(allowed)
        )),
    }
}

/// `0,1,2,5` → `0-2,5` (the `taskset -c` / `smp_affinity_list` syntax).
pub fn compress_list(cores: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = cores.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while let Some(&next) = iter.peek() {
            if last.checked_add(1) == Some(next) {
                last = next;
                iter.next();
            } else {
                break;
            }
        }
        out.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERRUPTS: &str = "\
            CPU0       CPU1       CPU2       CPU3
   0:         35          0          0          0   IO-APIC   2-edge      timer
   8:          0          0          1          0   IO-APIC   8-edge      rtc0
  16:          3          0          0         12   IO-APIC  16-fasteoi   i8042, ehci_hcd:usb1
  24:          0          0          0          0  PCI-MSI 65536-edge      virtio0-config
  25:       1000          2          0          0  PCI-MSI 65537-edge      virtio0-input.0
  26:          5       2000          0          0  PCI-MSI 65538-edge      virtio0-output.0
  40:          0          0          0          0  IR-PCI-MSI 524288-edge      eth0
  41:      12345          0          0          0  IR-PCI-MSI 524289-edge      eth0-TxRx-0
  42:          0      54321          0          0  IR-PCI-MSI 524290-edge      eth0-TxRx-1
  43:          9          9          9          9  IR-PCI-MSI 524291-edge      eth10-TxRx-0
  60:          7          0          0          0  IR-PCI-MSI 31457280-edge      mlx5_comp0@pci:0000:3b:00.0
  61:          0          7          0          0  IR-PCI-MSI 31457281-edge      mlx5_comp1@pci:0000:3b:00.0
  70:          1          1          1          1  IR-PCI-MSI 1234-edge
 NMI:          0          0          0          0   Non-maskable interrupts
 LOC:     123456     234567     345678     456789   Local timer interrupts
 ERR:          0
";

    fn irq_numbers(lines: &[&InterruptLine]) -> Vec<u32> {
        lines.iter().map(|l| l.irq).collect()
    }

    #[test]
    fn interrupts_numbered_lines_parsed_with_counts() {
        let table = parse_interrupts(INTERRUPTS);
        assert_eq!(
            table.iter().map(|l| l.irq).collect::<Vec<_>>(),
            vec![0, 8, 16, 24, 25, 26, 40, 41, 42, 43, 60, 61, 70]
        );
        let q1 = table.iter().find(|l| l.irq == 42).unwrap();
        assert_eq!(q1.per_cpu, vec![0, 54321, 0, 0]);
        assert_eq!(q1.description, "IR-PCI-MSI 524290-edge      eth0-TxRx-1");
        assert_eq!(q1.actions(), vec!["eth0-TxRx-1"]);
        let shared = table.iter().find(|l| l.irq == 16).unwrap();
        assert_eq!(shared.actions(), vec!["i8042", "ehci_hcd:usb1"]);
    }

    #[test]
    fn interrupts_garbage_lines_skipped_without_panic() {
        let table = parse_interrupts("CPU0\nxx: 1 a\n:\n 5\n 7: \n 9: 12 z y\n");
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].irq, 7);
        assert!(table[0].per_cpu.is_empty());
        assert!(table[0].actions().is_empty());
        assert_eq!(table[1].per_cpu, vec![12]);
        assert_eq!(table[1].actions(), vec!["y"]);
        assert!(parse_interrupts("").is_empty());
    }

    #[test]
    fn irqs_matched_by_interface_name_not_prefix() {
        let table = parse_interrupts(INTERRUPTS);
        let found = irqs_for(&table, "eth0", &DeviceIds::default());
        assert_eq!(irq_numbers(&found), vec![40, 41, 42]);
        let found = irqs_for(&table, "eth1", &DeviceIds::default());
        assert!(found.is_empty());
    }

    #[test]
    fn irqs_matched_by_virtio_device_name() {
        let table = parse_interrupts(INTERRUPTS);
        let ids = DeviceIds {
            device: Some("virtio0".into()),
            msi_irqs: Vec::new(),
        };
        assert_eq!(
            irq_numbers(&irqs_for(&table, "ens3", &ids)),
            vec![24, 25, 26]
        );
    }

    #[test]
    fn irqs_matched_by_pci_address_and_msi_vectors() {
        let table = parse_interrupts(INTERRUPTS);
        let ids = DeviceIds {
            device: Some("0000:3b:00.0".into()),
            msi_irqs: Vec::new(),
        };
        assert_eq!(
            irq_numbers(&irqs_for(&table, "enp59s0", &ids)),
            vec![60, 61]
        );
        let ids = DeviceIds {
            device: Some("0000:00:1f.6".into()),
            msi_irqs: vec![70],
        };
        assert_eq!(irq_numbers(&irqs_for(&table, "eno1", &ids)), vec![70]);
    }

    #[test]
    fn rx_queues_listed_sorted_from_sysfs_layout() {
        let base = std::env::temp_dir().join(format!("tandem-tune-{}", std::process::id()));
        let queues = base.join("veth0/queues");
        for q in ["rx-10", "rx-2", "tx-0", "rx-0", "rx-x"] {
            fs::create_dir_all(queues.join(q)).unwrap();
        }
        let listed = rx_queues(&base, "veth0");
        let missing = rx_queues(&base, "nope");
        let ids = device_ids(&base, "veth0");
        fs::remove_dir_all(&base).unwrap();
        assert_eq!(listed.unwrap(), vec![0, 2, 10]);
        assert!(missing.is_err());
        assert_eq!(ids, DeviceIds::default());
    }

    #[test]
    fn inspect_loopback_reports_virtual_device() {
        let report = inspect("lo");
        assert_eq!(report.irqs, Irqs::Virtual);
        assert_eq!(report.iface, "lo");
    }

    #[test]
    fn core_lists_compressed_and_checked() {
        assert_eq!(compress_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(compress_list(&[3]), "3");
        assert_eq!(compress_list(&[]), "");
        assert_eq!(check_cores(&[0, 1], &[0, 1, 2]), Ok(()));
        let err = check_cores(&[0, 9], &[0, 1, 2]).unwrap_err();
        assert_eq!(
            err,
            "core 9 is not one this process may run on (allowed: 0-2)"
        );
        assert_eq!(check_cores(&[9], &[]), Ok(()));
    }
}

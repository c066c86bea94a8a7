//! The flattened device tree the machine hands the kernel (in `a1` at boot), built with `vm-fdt`.
//!
//! It describes exactly the platform of [`crate::bus`]: one hart (`riscv,isa`, Sv39, with its
//! `riscv,cpu-intc` interrupt controller), RAM, `/chosen` (boot arguments, console, initrd), and
//! under `/soc` the CLINT, the PLIC (contexts: M-external 11 and S-external 9 of hart 0), the
//! 16550 UART, one `virtio,mmio` node per occupied slot and the `sifive,test0` syscon with
//! `syscon-poweroff` / `syscon-reboot`. A framebuffer becomes a top-level `simple-framebuffer`
//! node whose memory is a `no-map` region of `/reserved-memory`, so the kernel never allocates it.

use vm_fdt::FdtWriter;

use crate::bus::{
    CLINT_BASE, CLINT_SIZE, PLIC_BASE, PLIC_SIZE, SYSCON_BASE, SYSCON_SIZE, UART_BASE, UART_IRQ, UART_SIZE,
};
use crate::devices::framebuffer::FramebufferConfig;
use crate::devices::{DeviceError, VirtioSlot};

/// The ISA string Linux 6.1 parses: `rv64` + single letters, then `_`-separated multi-letter
/// extensions (`riscv_fill_hwcap`; it knows `sstc` since 6.0 and then programs `stimecmp`
/// directly instead of calling the SBI timer).
pub const DEFAULT_ISA: &str = "rv64imafdc_zicsr_zifencei_sstc";
/// The UART's input clock, as on QEMU (the divisor latch is cosmetic here).
pub const UART_CLOCK_HZ: u32 = 3_686_400;

const PHANDLE_CPU0_INTC: u32 = 1;
const PHANDLE_PLIC: u32 = 2;
const PHANDLE_SYSCON: u32 = 3;
const PHANDLE_FB_MEMORY: u32 = 4;

/// Interrupt numbers at the hart's local interrupt controller.
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;

/// Why a device tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FdtError {
    #[error("writing the device tree")]
    Writer(#[from] vm_fdt::Error),
    #[error("framebuffer")]
    Framebuffer(#[from] DeviceError),
    #[error("initrd {start:#x}..{end:#x} is empty or not inside RAM {ram_base:#x}+{ram_size:#x}")]
    Initrd { start: u64, end: u64, ram_base: u64, ram_size: u64 },
    #[error("RAM {base:#x}+{size:#x} is empty or wraps the address space")]
    Ram { base: u64, size: u64 },
}

/// What the device tree describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtConfig {
    pub ram_base: u64,
    /// All of RAM, including the framebuffer carved from its top.
    pub ram_size: u64,
    /// Kernel command line (`/chosen/bootargs`).
    pub cmdline: String,
    /// Initrd as guest physical `(start, end)`, end exclusive.
    pub initrd: Option<(u64, u64)>,
    pub framebuffer: Option<FramebufferConfig>,
    /// Occupied virtio slots ([`crate::devices::Devices::virtio_slots`]).
    pub virtio: Vec<VirtioSlot>,
    /// `timebase-frequency` ([`crate::TIMEBASE_HZ`]).
    pub timebase: u64,
    /// `riscv,isa` ([`DEFAULT_ISA`]).
    pub isa: String,
}

impl Default for FdtConfig {
    fn default() -> Self {
        FdtConfig {
            ram_base: crate::bus::RAM_BASE,
            ram_size: 128 << 20,
            cmdline: String::new(),
            initrd: None,
            framebuffer: None,
            virtio: Vec::new(),
            timebase: crate::TIMEBASE_HZ,
            isa: DEFAULT_ISA.to_string(),
        }
    }
}

/// Split a u64 into two cells, high first.
fn cells(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, (v & 0xffff_ffff) as u32]
}

fn reg(base: u64, size: u64) -> Vec<u32> {
    let mut v = cells(base).to_vec();
    v.extend(cells(size));
    v
}

/// Build the device tree blob.
pub fn build(cfg: &FdtConfig) -> Result<Vec<u8>, FdtError> {
    if cfg.ram_size == 0 || cfg.ram_base.checked_add(cfg.ram_size).is_none() {
        return Err(FdtError::Ram { base: cfg.ram_base, size: cfg.ram_size });
    }
    let ram_end = cfg.ram_base + cfg.ram_size;
    if let Some((start, end)) = cfg.initrd {
        if start >= end || start < cfg.ram_base || end > ram_end {
            return Err(FdtError::Initrd { start, end, ram_base: cfg.ram_base, ram_size: cfg.ram_size });
        }
    }
    let fb = match cfg.framebuffer {
        Some(fb) => Some((fb, fb.base(cfg.ram_base, cfg.ram_size)?)),
        None => None,
    };

    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_string("compatible", "riscv-virtio")?;
    f.property_string("model", "doppel,virt")?;

    let uart_path = format!("/soc/serial@{UART_BASE:x}");
    let aliases = f.begin_node("aliases")?;
    f.property_string("serial0", &uart_path)?;
    f.end_node(aliases)?;

    let chosen = f.begin_node("chosen")?;
    f.property_string("bootargs", &cfg.cmdline)?;
    f.property_string("stdout-path", &uart_path)?;
    if let Some((start, end)) = cfg.initrd {
        f.property_u64("linux,initrd-start", start)?;
        f.property_u64("linux,initrd-end", end)?;
    }
    f.end_node(chosen)?;

    let memory = f.begin_node(&format!("memory@{:x}", cfg.ram_base))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u32("reg", &reg(cfg.ram_base, cfg.ram_size))?;
    f.end_node(memory)?;

    let cpus = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    f.property_u32("timebase-frequency", u32::try_from(cfg.timebase).unwrap_or(u32::MAX))?;
    let cpu = f.begin_node("cpu@0")?;
    f.property_string("device_type", "cpu")?;
    f.property_u32("reg", 0)?;
    f.property_string("status", "okay")?;
    f.property_string("compatible", "riscv")?;
    f.property_string("riscv,isa", &cfg.isa)?;
    f.property_string("mmu-type", "riscv,sv39")?;
    let intc = f.begin_node("interrupt-controller")?;
    f.property_u32("#interrupt-cells", 1)?;
    f.property_null("interrupt-controller")?;
    f.property_string("compatible", "riscv,cpu-intc")?;
    f.property_phandle(PHANDLE_CPU0_INTC)?;
    f.end_node(intc)?;
    f.end_node(cpu)?;
    f.end_node(cpus)?;

    if let Some((fb, base)) = fb {
        let resv = f.begin_node("reserved-memory")?;
        f.property_u32("#address-cells", 2)?;
        f.property_u32("#size-cells", 2)?;
        f.property_null("ranges")?;
        let region = f.begin_node(&format!("framebuffer@{base:x}"))?;
        f.property_array_u32("reg", &reg(base, fb.size()))?;
        f.property_null("no-map")?;
        f.property_phandle(PHANDLE_FB_MEMORY)?;
        f.end_node(region)?;
        f.end_node(resv)?;

        let node = f.begin_node(&format!("framebuffer@{base:x}"))?;
        f.property_string("compatible", "simple-framebuffer")?;
        f.property_array_u32("reg", &reg(base, fb.size()))?;
        f.property_u32("width", fb.width)?;
        f.property_u32("height", fb.height)?;
        f.property_u32("stride", fb.stride())?;
        f.property_string("format", "x8r8g8b8")?;
        f.property_u32("memory-region", PHANDLE_FB_MEMORY)?;
        f.property_string("status", "okay")?;
        f.end_node(node)?;
    }

    let soc = f.begin_node("soc")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_string("compatible", "simple-bus")?;
    f.property_null("ranges")?;

    let clint = f.begin_node(&format!("clint@{CLINT_BASE:x}"))?;
    f.property_string_list("compatible", vec!["sifive,clint0".into(), "riscv,clint0".into()])?;
    f.property_array_u32("reg", &reg(CLINT_BASE, CLINT_SIZE))?;
    f.property_array_u32("interrupts-extended", &[PHANDLE_CPU0_INTC, IRQ_M_SOFT, PHANDLE_CPU0_INTC, IRQ_M_TIMER])?;
    f.end_node(clint)?;

    let plic = f.begin_node(&format!("plic@{PLIC_BASE:x}"))?;
    f.property_string_list("compatible", vec!["sifive,plic-1.0.0".into(), "riscv,plic0".into()])?;
    f.property_array_u32("reg", &reg(PLIC_BASE, PLIC_SIZE))?;
    f.property_u32("#address-cells", 0)?;
    f.property_u32("#interrupt-cells", 1)?;
    f.property_null("interrupt-controller")?;
    f.property_u32("riscv,ndev", crate::devices::plic::NUM_SOURCES - 1)?;
    f.property_array_u32("interrupts-extended", &[PHANDLE_CPU0_INTC, IRQ_M_EXT, PHANDLE_CPU0_INTC, IRQ_S_EXT])?;
    f.property_phandle(PHANDLE_PLIC)?;
    f.end_node(plic)?;

    let uart = f.begin_node(&format!("serial@{UART_BASE:x}"))?;
    f.property_string("compatible", "ns16550a")?;
    f.property_array_u32("reg", &reg(UART_BASE, UART_SIZE))?;
    f.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    f.property_u32("interrupt-parent", PHANDLE_PLIC)?;
    f.property_u32("interrupts", UART_IRQ)?;
    f.end_node(uart)?;

    for slot in &cfg.virtio {
        let node = f.begin_node(&format!("virtio_mmio@{:x}", slot.base))?;
        f.property_string("compatible", "virtio,mmio")?;
        f.property_array_u32("reg", &reg(slot.base, slot.size))?;
        f.property_u32("interrupt-parent", PHANDLE_PLIC)?;
        f.property_u32("interrupts", slot.irq)?;
        f.end_node(node)?;
    }

    let test = f.begin_node(&format!("test@{SYSCON_BASE:x}"))?;
    f.property_string_list("compatible", vec!["sifive,test1".into(), "sifive,test0".into(), "syscon".into()])?;
    f.property_array_u32("reg", &reg(SYSCON_BASE, SYSCON_SIZE))?;
    f.property_phandle(PHANDLE_SYSCON)?;
    f.end_node(test)?;
    for (name, compatible, value) in [
        ("poweroff", "syscon-poweroff", crate::devices::syscon::FINISHER_PASS),
        ("reboot", "syscon-reboot", crate::devices::syscon::FINISHER_RESET),
    ] {
        let node = f.begin_node(name)?;
        f.property_string("compatible", compatible)?;
        f.property_u32("regmap", PHANDLE_SYSCON)?;
        f.property_u32("offset", 0)?;
        f.property_u32("value", value)?;
        f.end_node(node)?;
    }

    f.end_node(soc)?;
    f.end_node(root)?;
    Ok(f.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{DeviceKind, Devices, DevicesConfig, MemDisk};

    fn config() -> FdtConfig {
        let devices = Devices::new(DevicesConfig {
            disk: Some(Box::new(MemDisk(vec![0; 4096]))),
            ..Default::default()
        })
        .unwrap();
        FdtConfig {
            ram_size: 256 << 20,
            cmdline: "console=ttyS0 root=/dev/vda rw".into(),
            initrd: Some((0x8400_0000, 0x8420_0000)),
            framebuffer: Some(FramebufferConfig { width: 800, height: 600 }),
            virtio: devices.virtio_slots(),
            ..Default::default()
        }
    }

    /// Decompile with the real `dtc` (installed by scripts/setup.sh).
    fn dtc(blob: &[u8]) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("doppel-fdt-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("machine.dtb");
        #[allow(clippy::disallowed_methods)] // test-only: hand the blob to dtc
        std::fs::write(&path, blob).unwrap();
        let out = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&path)
            .output()
            .expect("dtc is installed by scripts/setup.sh (device-tree-compiler)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "dtc refused the blob: {}", String::from_utf8_lossy(&out.stderr));
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(!warnings.contains("ERROR"), "{warnings}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn dtc_reads_it_and_key_nodes_are_there() {
        let cfg = config();
        let dts = dtc(&build(&cfg).unwrap());
        for needle in [
            "compatible = \"riscv-virtio\";",
            "bootargs = \"console=ttyS0 root=/dev/vda rw\";",
            "stdout-path = \"/soc/serial@10000000\";",
            "linux,initrd-start = <0x00 0x84000000>;",
            "linux,initrd-end = <0x00 0x84200000>;",
            "memory@80000000 {",
            "reg = <0x00 0x80000000 0x00 0x10000000>;",
            "timebase-frequency = <0x989680>;",
            "riscv,isa = \"rv64imafdc_zicsr_zifencei_sstc\";",
            "mmu-type = \"riscv,sv39\";",
            "compatible = \"riscv,cpu-intc\";",
            // dtc prints string lists with embedded NULs.
            "compatible = \"sifive,clint0\\0riscv,clint0\";",
            "interrupts-extended = <0x01 0x03 0x01 0x07>;",
            "compatible = \"sifive,plic-1.0.0\\0riscv,plic0\";",
            "riscv,ndev = <0x3f>;",
            "interrupts-extended = <0x01 0x0b 0x01 0x09>;",
            "compatible = \"ns16550a\";",
            // 0x00384000, which dtc happens to print as a string.
            "clock-frequency = \"\\08@\";",
            "interrupts = <0x0a>;",
            "virtio_mmio@10001000 {",
            "virtio_mmio@10005000 {",
            "compatible = \"syscon-poweroff\";",
            "value = <0x5555>;",
            "compatible = \"syscon-reboot\";",
            "value = <0x7777>;",
            "compatible = \"simple-framebuffer\";",
            "format = \"x8r8g8b8\";",
            "stride = <0xc80>;",
            "width = <0x320>;",
            "height = <0x258>;",
            "no-map;",
        ] {
            assert!(dts.contains(needle), "missing {needle:?} in\n{dts}");
        }
        // Five virtio devices (blk, net, keyboard, tablet, rng), and no sixth.
        assert_eq!(dts.matches("compatible = \"virtio,mmio\"").count(), 5);
        assert!(!dts.contains("virtio_mmio@10006000"));
        // The framebuffer sits at the top of RAM: 800*600*4 rounded to pages.
        let fb_size = (800u64 * 600 * 4).next_multiple_of(4096);
        let fb_base = 0x8000_0000 + (256u64 << 20) - fb_size;
        assert!(dts.contains(&format!("framebuffer@{fb_base:x} {{")), "{dts}");
        assert_eq!(cfg.virtio.iter().filter(|s| s.kind == DeviceKind::Block).count(), 1);
    }

    #[test]
    fn minimal_tree_without_optional_parts() {
        let dts = dtc(&build(&FdtConfig::default()).unwrap());
        assert!(!dts.contains("framebuffer") && !dts.contains("initrd") && !dts.contains("virtio_mmio"));
        assert!(dts.contains("bootargs = \"\";") || dts.contains("bootargs = [00];"), "{dts}");
    }

    #[test]
    fn bad_configs_are_refused_by_name() {
        let mut cfg = FdtConfig { initrd: Some((0x10, 0x20)), ..Default::default() };
        assert!(matches!(build(&cfg), Err(FdtError::Initrd { start: 0x10, .. })));
        cfg.initrd = Some((0x8000_2000, 0x8000_1000));
        assert!(build(&cfg).is_err());
        let cfg = FdtConfig { framebuffer: Some(FramebufferConfig { width: 8192, height: 8192 }), ..Default::default() };
        assert!(matches!(build(&cfg), Err(FdtError::Framebuffer(_))));
        let cfg = FdtConfig { ram_size: 0, ..Default::default() };
        assert!(matches!(build(&cfg), Err(FdtError::Ram { .. })));
        let cfg = FdtConfig { cmdline: "nul\0inside".into(), ..Default::default() };
        assert!(matches!(build(&cfg), Err(FdtError::Writer(_))));
    }
}

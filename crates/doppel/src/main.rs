//! The `doppel` command: one binary, a subcommand per job.

use clap::{Parser, Subcommand};

mod netem;
mod place;
mod stream;
mod record;
mod vm;
mod vnc;
mod workload;

/// doppel: a virtual-desktop cloud on a deterministic RISC-V machine.
///
/// Exit codes: 0 success; 1 error (the message says what and where); 2 bad command line;
/// for `vm run`, the guest's own power-off code when it is not 0; for `replay`, 4 when the
/// replay diverged from the recording.
#[derive(Parser, Debug)]
#[command(name = "doppel", version, propagate_version = true)]
struct Cli {
    /// Log filter, e.g. `info`, `doppel_machine=debug` (also read from DOPPEL_LOG).
    #[arg(long, global = true, default_value = "warn", env = "DOPPEL_LOG")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run virtual machines.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Record a guest run to a replay log plus its starting snapshot; see `record --help`.
    Record(Box<record::RecordArgs>),
    /// Replay a log made by `record`, verifying every checkpoint; see `replay --help`.
    Replay(record::ReplayArgs),
    /// Print the virtual platform's memory map and timebase.
    Platform,
    /// Emulate a WAN link in user space (delay, jitter, rate, queue, loss); see `netem --help`.
    Netem(netem::NetemArgs),
    /// VMShadow placement: plan moves, generate scenarios, rank desktops from pcaps, benchmark.
    Place(place::PlaceArgs),
    /// Run a VM, record it and serve it live to replicas over TCP.
    Host(stream::HostArgs),
    /// Follow a `doppel host` live from a demand-paged snapshot.
    Replica(stream::ReplicaArgs),
    /// Guest workloads (video, game, edit, cp, ...): list them, run one with its scripted input.
    #[command(subcommand)]
    Workload(workload::WorkloadCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Vm(command) => vm::main(command),
        Command::Record(args) => record::record(*args),
        Command::Replay(args) => record::replay(args),
        Command::Workload(command) => workload::main(command),
        Command::Netem(args) => netem::run(args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Place(args) => place::run(args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Host(args) => stream::host(args),
        Command::Replica(args) => stream::replica(args),
        Command::Platform => {
            print_platform();
            Ok(std::process::ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // The whole chain, once: "what failed: because: because".
            eprintln!("doppel: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn print_platform() {
    use doppel_machine::bus::*;
    println!("timebase        {} Hz", doppel_machine::TIMEBASE_HZ);
    println!("syscon          {SYSCON_BASE:#012x} +{SYSCON_SIZE:#x}");
    println!("clint           {CLINT_BASE:#012x} +{CLINT_SIZE:#x}");
    println!("plic            {PLIC_BASE:#012x} +{PLIC_SIZE:#x}");
    println!("uart (16550)    {UART_BASE:#012x} +{UART_SIZE:#x}  irq {UART_IRQ}");
    for slot in 0..VIRTIO_SLOTS {
        let base = VIRTIO_BASE + slot * VIRTIO_STRIDE;
        println!(
            "virtio-mmio {slot}   {base:#012x} +{VIRTIO_STRIDE:#x} irq {}",
            VIRTIO_IRQ_BASE as u64 + slot
        );
    }
    println!("ram             {RAM_BASE:#012x}");
}

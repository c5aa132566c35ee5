//! The processes `fedsa flower` starts: each in a process group of its own, so that stopping
//! it also stops what it started (Flower's SuperLink and SuperNodes each start
//! `flower-superexec`, which starts the apps); all stopped, by group, when dropped: at the end,
//! on an error, and after Ctrl-C.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Set by SIGINT and SIGTERM.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C (and SIGTERM) from now on only set a flag that [`interrupted`] reads, so the
/// processes are stopped before this one exits.
pub fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One started process and its name for messages.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    /// Starts `cmd` in its own process group, its output appended to `log`.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the {name} ({})", cmd.get_program().display()))?;
        Ok(Self {
            name: name.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops its whole process group: SIGTERM, then SIGKILL what is left after a grace.
    pub fn stop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: signalling a process group this process created; no memory is involved.
        unsafe {
            libc::kill(-group, libc::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && self.exited().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; the group's other members may outlive its leader.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // Return only when the group is empty, so a caller that checks finds nothing left.
        let until = Instant::now() + Duration::from_secs(5);
        // SAFETY: signal 0 only asks whether any process of the group exists.
        while Instant::now() < until && unsafe { libc::kill(-group, 0) } == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every process started, stopped when dropped (latest first).
#[derive(Default)]
pub struct Procs(pub Vec<Proc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in self.0.iter_mut().rev() {
            p.stop();
        }
    }
}

/// A port on 127.0.0.1 that is free now.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something listens on 127.0.0.1:`port`, or `proc` exits, or `within` passes.
pub fn wait_listening(proc: &mut Proc, port: u16, within: Duration, log: &Path) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let until = Instant::now() + within;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            bail!(
                "the {} exited ({status}) before it listened on port {port}; see {}",
                proc.name,
                log.display()
            );
        }
        if Instant::now() > until || interrupted() {
            bail!(
                "the {} did not listen on port {port} within {:.0} s; see {}",
                proc.name,
                within.as_secs_f64(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

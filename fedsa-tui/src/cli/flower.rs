//! `fedsa flower`: a config as a real Flower federation on this machine. It starts a
//! SuperLink and one SuperNode per client on loopback (optionally with TLS and SuperNode
//! authentication), runs the fedsa Flower app with `flwr run --stream`, passes its lines
//! through, and stops every process it started by its process group, at the end, on an error
//! and on Ctrl-C. Everything it makes goes under `<output_dir>/.flower/<name>/`: Flower's
//! home, the logs, the certificates and keys, and each node's state folder.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fedsa_core::Config;

use super::flower_procs::{Proc, Procs, catch_interrupts, free_port, interrupted, wait_listening};

#[derive(Debug, clap::Args)]
pub struct FlowerArgs {
    /// The fedsa config (the same TOML `fedsa run` takes).
    pub config: PathBuf,
    /// Continue the run folder's last complete checkpoint; the nodes go back to it.
    #[arg(long)]
    pub resume: bool,
    /// TLS with a self-signed certificate authority (openssl) and SuperNode authentication
    /// with keys registered at the SuperLink (ssh-keygen), as a real deployment runs.
    #[arg(long)]
    pub secure: bool,
    /// The Python environment with flwr 1.42.0 and the fedsa_flower module
    /// (`scripts/flower-setup`); default: $FEDSA_FLOWER_VENV, else .venv-flower.
    #[arg(long)]
    pub venv: Option<PathBuf>,
    /// The Flower app folder.
    #[arg(long, default_value = "flower-app")]
    pub app: PathBuf,
    /// Start a SuperNode that dies again after this many seconds, with its state folder: it
    /// rejoins with its own state.
    #[arg(long, value_name = "SECONDS")]
    pub restart_nodes: Option<f64>,
    /// Seconds the server waits for one reply before the client counts as failed.
    #[arg(long, default_value_t = 900.0)]
    pub reply_timeout: f64,
    /// With --secure, also start a SuperNode whose key is not registered (it must be refused).
    #[arg(long, hide = true)]
    pub unregistered_node: bool,
}

/// Where the run's Flower files go, and the commands' environment.
struct Setup {
    work: PathBuf,
    bin: PathBuf,
    path_var: std::ffi::OsString,
    secure: bool,
}

impl Setup {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("PATH", &self.path_var)
            .env("FLWR_HOME", self.work.join("home"))
            .env("FLWR_TELEMETRY_ENABLED", "0")
            .env("FLWR_DISABLE_UPDATE_CHECK", "1")
            .current_dir(&self.work);
        cmd
    }

    fn certs(&self) -> PathBuf {
        self.work.join("certs")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.join("logs").join(format!("{name}.log"))
    }
}

pub fn run(args: &FlowerArgs) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let config = absolute_paths(Config::load(&args.config)?, &cwd);
    let n = config.federation.num_clients;
    let venv = args
        .venv
        .clone()
        .or_else(|| std::env::var_os("FEDSA_FLOWER_VENV").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".venv-flower"));
    let bin = cwd.join(&venv).join("bin");
    for tool in ["flower-superlink", "flower-supernode", "flwr"] {
        if !bin.join(tool).is_file() {
            bail!(
                "no Flower environment at {} ({tool} is missing): run scripts/flower-setup, or \
                 pass --venv",
                venv.display()
            );
        }
    }
    let app = cwd.join(&args.app);
    if !app.join("pyproject.toml").is_file() {
        bail!(
            "{} is not a Flower app folder (no pyproject.toml)",
            app.display()
        );
    }
    let work = config.output_dir.join(".flower").join(&config.name);
    for sub in ["home", "logs", "nodes"] {
        std::fs::create_dir_all(work.join(sub))
            .with_context(|| format!("creating {}", work.join(sub).display()))?;
    }
    let config_file = work.join("config.toml");
    fedsa_core::io::write_atomic(&config_file, config.to_toml_string()?.as_bytes())?;
    let mut path_var = std::ffi::OsString::from(&bin);
    if let Some(old) = std::env::var_os("PATH") {
        path_var.push(":");
        path_var.push(old);
    }
    let setup = Setup {
        work,
        bin,
        path_var,
        secure: args.secure,
    };
    if args.secure {
        make_certificates(&setup, n + usize::from(args.unregistered_node))?;
    }

    catch_interrupts();
    let mut procs = Procs::default();
    let port = free_port()?;
    let link_log = setup.log("superlink");
    let mut link = setup.command("flower-superlink");
    link.args([
        "--disable-runtime-dependency-installation",
        "--port",
        &port.to_string(),
    ]);
    if setup.secure {
        let c = setup.certs();
        link.arg("--ssl-ca-certfile")
            .arg(c.join("ca.crt"))
            .arg("--ssl-certfile")
            .arg(c.join("server.crt"))
            .arg("--ssl-keyfile")
            .arg(c.join("server.key"))
            .arg("--enable-supernode-auth");
    } else {
        link.arg("--insecure");
    }
    procs.0.push(Proc::start("SuperLink", link, &link_log)?);
    let superlink = procs.0.last_mut().expect("just started");
    wait_listening(superlink, port, Duration::from_mins(1), &link_log)?;
    let link_pid = superlink.pid();
    fedsa_core::io::write_atomic(
        &setup.work.join("superlink.pid"),
        format!("{link_pid}\n").as_bytes(),
    )?;
    write_connection(&setup, port)?;
    println!(
        "flower: SuperLink on 127.0.0.1:{port} (log {})",
        link_log.display()
    );

    if setup.secure {
        for k in 0..n {
            register(&setup, &format!("node-{k}"))?;
        }
    }
    let mut nodes = Vec::new();
    for k in 0..n {
        let node = Node::new(&setup, k, port)?;
        procs.0.push(node.start(&setup)?);
        nodes.push((node, procs.0.len() - 1));
    }
    if args.unregistered_node {
        let stranger = Node {
            key: "node-unregistered".into(),
            ..Node::new(&setup, 0, port)?
        };
        procs.0.push(stranger.start(&setup)?);
    }
    write_pids(&setup, &nodes, &procs)?;

    let mut run = setup.command("flwr");
    run.arg("run")
        .arg(&app)
        .arg("local")
        .arg("--stream")
        .arg("--run-config")
        .arg(format!(
            "config=\"{}\" resume={} reply-timeout={:.1}",
            quoted(&config_file)?,
            args.resume,
            args.reply_timeout
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = run.spawn().context("starting `flwr run`")?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    let out_thread = std::thread::spawn(move || {
        let mut finished = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("summary: ") {
                finished = true;
            } else {
                println!("{line}");
            }
        }
        finished
    });
    procs.0.push(Proc {
        name: "flwr run".into(),
        child,
    });
    let run_index = procs.0.len() - 1;
    let mut died: Vec<Option<std::time::Instant>> = vec![None; nodes.len()];
    let status = loop {
        if interrupted() {
            bail!("interrupted: every process this run started was stopped");
        }
        if let Some(status) = procs.0[run_index].exited() {
            break status;
        }
        if let Some(delay) = args.restart_nodes {
            let delay = Duration::from_secs_f64(delay.max(0.0));
            for (k, (node, index)) in nodes.iter().enumerate() {
                if died[k].is_none()
                    && let Some(status) = procs.0[*index].exited()
                {
                    println!(
                        "flower: the SuperNode of client {} exited ({status}); starting it again \
                         in {:.0} s",
                        node.client,
                        delay.as_secs_f64()
                    );
                    died[k] = Some(std::time::Instant::now());
                }
                if died[k].is_some_and(|at| at.elapsed() >= delay) {
                    died[k] = None;
                    let old = procs.0[*index].pid();
                    procs.0[*index] = node.start(&setup)?;
                    println!(
                        "flower: the SuperNode of client {} (was pid {old}) started again as pid \
                         {} with its state folder",
                        node.client,
                        procs.0[*index].pid()
                    );
                    write_pids(&setup, &nodes, &procs)?;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let finished = out_thread.join().unwrap_or(false);
    let _ = err_thread.join();
    drop(procs);
    if !(status.success() && finished) {
        bail!(
            "the Flower run did not finish ({status}); the logs are in {}",
            setup.work.join("logs").display()
        );
    }
    Ok(())
}

/// One SuperNode: its client, port, key and state folder.
#[derive(Debug, Clone)]
struct Node {
    client: usize,
    superlink: u16,
    port: u16,
    key: String,
    state: PathBuf,
}

impl Node {
    fn new(setup: &Setup, client: usize, superlink: u16) -> Result<Self> {
        let state = setup.work.join("nodes").join(format!("node-{client}"));
        std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        Ok(Self {
            client,
            superlink,
            port: free_port()?,
            key: format!("node-{client}"),
            state,
        })
    }

    fn start(&self, setup: &Setup) -> Result<Proc> {
        let mut cmd = setup.command("flower-supernode");
        cmd.arg("--superlink")
            .arg(format!("127.0.0.1:{}", self.superlink))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--node-config")
            .arg(format!(
                "partition-id={} state-dir=\"{}\"",
                self.client,
                quoted(&self.state)?
            ));
        if setup.secure {
            let c = setup.certs();
            cmd.arg("--root-certificates")
                .arg(c.join("ca.crt"))
                .arg("--auth-supernode-private-key")
                .arg(c.join(&self.key))
                .arg("--auth-supernode-public-key")
                .arg(c.join(format!("{}.pub", self.key)));
        } else {
            cmd.arg("--insecure");
        }
        let log = setup.log(&self.key);
        let mut proc = Proc::start(&format!("SuperNode of client {}", self.client), cmd, &log)?;
        wait_listening(&mut proc, self.port, Duration::from_mins(1), &log)?;
        Ok(proc)
    }
}

/// The nodes' process ids, for whoever needs to find one (`nodes.json`).
fn write_pids(setup: &Setup, nodes: &[(Node, usize)], procs: &Procs) -> Result<()> {
    let list: Vec<serde_json::Value> = nodes
        .iter()
        .map(|(node, i)| {
            serde_json::json!({
                "client": node.client,
                "pid": procs.0[*i].pid(),
                "state_dir": node.state,
            })
        })
        .collect();
    fedsa_core::io::write_atomic(
        &setup.work.join("nodes.json"),
        serde_json::to_string_pretty(&list)?.as_bytes(),
    )?;
    Ok(())
}

/// Flower's connection to the SuperLink (`$FLWR_HOME/config.toml`), named `local`.
fn write_connection(setup: &Setup, port: u16) -> Result<()> {
    let security = if setup.secure {
        format!(
            "root-certificates = \"{}\"",
            quoted(&setup.certs().join("ca.crt"))?
        )
    } else {
        "insecure = true".into()
    };
    let text = format!(
        "[superlink]\ndefault = \"local\"\n\n[superlink.local]\naddress = \"127.0.0.1:{port}\"\n{security}\n"
    );
    fedsa_core::io::write_atomic(&setup.work.join("home/config.toml"), text.as_bytes())?;
    Ok(())
}

/// A certificate authority, the SuperLink's certificate for 127.0.0.1, and a key pair per
/// node (ECDSA P-384 in OpenSSH's format, which Flower's node authentication reads).
fn make_certificates(setup: &Setup, nodes: usize) -> Result<()> {
    let c = setup.certs();
    std::fs::create_dir_all(&c)?;
    let ext = c.join("san.ext");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "30",
            "-subj",
            "/CN=fedsa local CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "30",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        tool(
            Command::new("openssl").args(args).current_dir(&c),
            "openssl",
        )?;
    }
    let mut keys: Vec<String> = (0..nodes).map(|k| format!("node-{k}")).collect();
    keys.push("node-unregistered".into());
    for key in keys {
        let _ = std::fs::remove_file(c.join(&key));
        let _ = std::fs::remove_file(c.join(format!("{key}.pub")));
        tool(
            Command::new("ssh-keygen")
                .args([
                    "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-C", "", "-f", &key,
                ])
                .current_dir(&c),
            "ssh-keygen",
        )?;
    }
    Ok(())
}

/// Registers a node's public key with the SuperLink (node authentication).
fn register(setup: &Setup, key: &str) -> Result<()> {
    let mut cmd = setup.command("flwr");
    cmd.args(["supernode", "register"])
        .arg(setup.certs().join(format!("{key}.pub")))
        .arg("local");
    tool(&mut cmd, "flwr supernode register")
}

fn tool(cmd: &mut Command, name: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {name} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "{name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A path inside a double-quoted Flower config string.
fn quoted(path: &Path) -> Result<String> {
    let text = path.display().to_string();
    if text.contains('"') || text.contains('\\') {
        bail!("{text}: a path with quotes or backslashes cannot be passed to Flower's configs");
    }
    Ok(text)
}

/// The config's relative paths made absolute against `cwd`: the Flower processes run
/// elsewhere.
fn absolute_paths(config: Config, cwd: &Path) -> Config {
    let mut config = config.input_paths_under(cwd);
    if config.output_dir.is_relative() {
        config.output_dir = cwd.join(&config.output_dir);
    }
    config
}

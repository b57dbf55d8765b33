//! A throwaway PostgreSQL server for tests: [`Cluster::start`] runs
//! `initdb` into a fresh temporary directory and starts `postgres` on a
//! free port of 127.0.0.1; [`shared`] is one such cluster per test process.
//! No client library: the PostgreSQL command-line programs do the work.
//!
//! The server never outlives the process that started it, even one killed
//! with SIGKILL or a `static` that is never dropped: it runs under a small
//! `sh` wrapper whose stdin is a pipe held by this process. When the pipe
//! closes (the [`Cluster`] is dropped or the process exits, however), the
//! wrapper shuts the server down (immediate shutdown) and removes the
//! cluster's directory; [`Cluster::stop`] first writes `keep` to the pipe,
//! for a fast shutdown that keeps the data for [`Cluster::resume`].
//!
//! The programs are found in `$AETHER_PG_BIN`, else `pg_config --bindir`,
//! else the highest `/usr/lib/postgresql/*/bin`, else through `PATH`
//! (where `initdb` is). PostgreSQL refuses to run as root, so as root the
//! server runs as the `postgres` user (`runuser`), which Debian's
//! `postgresql` package creates.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long [`Cluster::start`] and [`Cluster::resume`] wait for the server
/// to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Cluster::stop`] waits for a fast shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long dropping a [`Cluster`] waits for an immediate shutdown before
/// falling back to `pg_ctl stop -m immediate` and killing the wrapper.
const DROP_TIMEOUT: Duration = Duration::from_secs(20);

/// The wrapper the server runs under, as `sh -c WRAPPER sh POSTGRES DATA
/// PORT DIR`. Its stdin is a pipe from the test process: a `keep` line
/// asks for a fast shutdown (SIGINT) keeping the data; end of file (the
/// test process dropped the cluster, exited or was killed) an immediate
/// shutdown (SIGQUIT, what `pg_ctl stop -m immediate` sends) after which
/// the wrapper removes DIR. The wrapper exits when the server does, for
/// whatever reason, so the test process sees a server that failed to
/// start. Asynchronous commands get /dev/null as stdin, hence fd 3 for the
/// watcher's `read`.
const WRAPPER: &str = r#"
postgres=$1 data=$2 port=$3 dir=$4
exec 3<&0
"$postgres" -D "$data" -p "$port" -h 127.0.0.1 -k "$dir" \
  -c max_connections=200 -c shared_buffers=32MB </dev/null 3<&- &
pg=$!
{
  if read -r line <&3 && [ "$line" = keep ]; then
    kill -INT "$pg"
  else
    : >"$dir/.remove"
    kill -QUIT "$pg"
  fi
} 2>/dev/null &
watcher=$!
exec 3<&-
wait "$pg"
status=$?
kill "$watcher" 2>/dev/null
if [ -n "$dir" ] && [ -e "$dir/.remove" ]; then
  rm -rf -- "$dir"
fi
exit "$status"
"#;

/// A PostgreSQL server with its own data directory, in a temporary
/// directory removed when the cluster is dropped. Connect as `postgres`
/// (trust authentication, no password) to [`Cluster::url`].
pub struct Cluster {
    bin: PathBuf,
    /// Whether the server programs run as the `postgres` user (this
    /// process is root).
    as_postgres: bool,
    port: u16,
    /// The running server's wrapper; `None` once stopped.
    server: Option<Server>,
    /// Dropped after [`Cluster::drop`] stopped the server.
    dir: TempDir,
}

/// The `sh` wrapper a server runs under, and the pipe to its stdin.
struct Server {
    wrapper: Child,
    stdin: ChildStdin,
}

impl Cluster {
    /// `initdb` (trust authentication, superuser `postgres`, `--no-sync`,
    /// locale C, encoding UTF8) into a fresh temporary directory, then
    /// starts the server on a free port of 127.0.0.1 only (its Unix socket
    /// in that directory), with `max_connections=200`,
    /// `shared_buffers=32MB` and `fsync` left on (durability tests rely on
    /// it); its log goes to `postgres.log` there. Returns once
    /// `pg_isready` says it accepts connections (at most ~30 s). Err with
    /// the reason when PostgreSQL is not installed or does not start
    /// (with the end of the server's log).
    pub fn start() -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let as_postgres = effective_uid_is_root();
        if as_postgres && !user_exists("postgres") {
            return Err(
                "running as root, and PostgreSQL refuses to: it would run as the `postgres` \
                 user, which does not exist (Debian's `postgresql` package creates it)"
                    .to_owned(),
            );
        }
        let dir = TempDir::new()?;
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.path)
                .output()
                .map_err(|e| format!("running chown: {e}"))?;
            check("chown -R postgres:postgres", &out)?;
        }
        let mut cluster = Cluster {
            bin,
            as_postgres,
            port: 0,
            server: None,
            dir,
        };
        let out = cluster
            .command(cluster.bin.join("initdb"))
            .arg("-D")
            .arg(cluster.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--locale=C",
                "-E",
                "UTF8",
            ])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        check("initdb", &out)?;
        // free_port releases the port before postgres binds it: another
        // process may take it in between, so try again on another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = crate::free_port();
            let log_start = std::fs::metadata(cluster.log()).map_or(0, |m| m.len());
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                // The server exited because the port was taken: another.
                Err(_)
                    if attempt < 3
                        && cluster.server.is_none()
                        && log_since(&cluster.log(), log_start).contains("already in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres`: the `postgres`
    /// database, as the superuser.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The server's TCP port (on 127.0.0.1); the same after
    /// [`Cluster::resume`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `CREATE DATABASE <name>` and returns the new database's URL.
    /// Panics unless `name` matches `[a-z0-9_]+` (it goes into SQL
    /// unquoted).
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?} must match [a-z0-9_]+"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.database_url(name))
    }

    /// A new database named `<prefix>_<counter>_<pid>` (unique in this
    /// process and among concurrent ones); its URL. `prefix` must match
    /// `[a-z0-9_]+`.
    pub fn fresh_database(&self, prefix: &str) -> Result<String, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("{prefix}_{n}_{}", std::process::id()))
    }

    /// Runs `sql` with `psql` in `database` (unaligned, tuples only, no
    /// `.psqlrc`, stopping at the first error) and returns its stdout,
    /// e.g. `"1\n"` for `select 1`; Err with psql's stderr.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let psql = self.bin.join("psql");
        let program = if psql.is_file() {
            psql.into_os_string()
        } else {
            "psql".into()
        };
        let out = Command::new(program)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        check(&format!("psql -c {sql:?}"), &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server (fast shutdown: open transactions are rolled back,
    /// committed ones are on disk) and waits for it to exit, keeping its
    /// data; [`Cluster::resume`] starts it again. Ok if already stopped.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(Server {
            mut wrapper,
            mut stdin,
        }) = self.server.take()
        else {
            return Ok(());
        };
        // A wrapper already gone (the server died) makes this fail: the
        // wait below reports it.
        let _ = stdin.write_all(b"keep\n").and_then(|()| stdin.flush());
        drop(stdin);
        match wait_for(&mut wrapper, STOP_TIMEOUT) {
            Some(_) => Ok(()),
            None => {
                self.pg_ctl_stop_immediate();
                let _ = wrapper.kill();
                let _ = wrapper.wait();
                Err(format!(
                    "PostgreSQL did not shut down within {STOP_TIMEOUT:?}; stopped it \
                     immediately. Its log ends with:\n{}",
                    self.log_tail()
                ))
            }
        }
    }

    /// Starts the server again after [`Cluster::stop`], on the same port
    /// with the same data, and waits until it accepts connections. Ok if
    /// already running.
    pub fn resume(&mut self) -> Result<(), String> {
        if self.server.is_some() {
            return Ok(());
        }
        self.launch()
    }

    fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path.join("postgres.log")
    }

    /// `program`, as the `postgres` user when this process is root, in the
    /// cluster's directory.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        run_as(self.as_postgres, &self.dir.path, program)
    }

    /// Starts the wrapper and the server on `self.port`; waits until it
    /// accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| format!("opening {}: {e}", self.log().display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("duplicating the log's descriptor: {e}"))?;
        // `sh` from PATH, not from the bin directory.
        let mut cmd = self.command("sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(self.bin.join("postgres"))
            .arg(self.data())
            .arg(self.port.to_string())
            .arg(&self.dir.path)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2);
        let mut wrapper = cmd
            .spawn()
            .map_err(|e| format!("starting PostgreSQL's wrapper: {e}"))?;
        let stdin = wrapper.stdin.take().expect("piped stdin");
        self.server = Some(Server { wrapper, stdin });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let server = self.server.as_mut().expect("just started");
            if let Ok(Some(status)) = server.wrapper.try_wait() {
                self.server = None;
                return Err(format!(
                    "PostgreSQL exited ({status}) instead of starting on 127.0.0.1:{}; \
                     its log ends with:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Left running: stop() or drop cleans it up.
                return Err(format!(
                    "PostgreSQL did not accept connections on 127.0.0.1:{} within \
                     {READY_TIMEOUT:?}; its log ends with:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_isready` says the server accepts connections.
    fn is_ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args([
                "-q",
                "-t",
                "2",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", "postgres"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The fallback when the wrapper does not stop the server.
    fn pg_ctl_stop_immediate(&self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .command(self.bin.join("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-t", "10"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let text = log_since(&self.log(), 0);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    /// Stops the server immediately (closing the wrapper's pipe makes it
    /// send SIGQUIT, as `pg_ctl stop -m immediate` does; `pg_ctl` itself
    /// if the wrapper does not exit) and removes the directory. Never
    /// panics.
    fn drop(&mut self) {
        if let Some(Server { mut wrapper, stdin }) = self.server.take() {
            drop(stdin);
            if wait_for(&mut wrapper, DROP_TIMEOUT).is_none() {
                self.pg_ctl_stop_immediate();
                let _ = wrapper.kill();
                let _ = wrapper.wait();
            }
        }
        // The wrapper has gone: a server still there (the wrapper killed
        // from outside) is stopped here.
        self.pg_ctl_stop_immediate();
        // `self.dir` removes the directory when dropped next.
    }
}

/// One cluster per test process, started on first use, for tests that
/// only need databases (make one each with [`Cluster::fresh_database`])
/// and do not stop the server. Never dropped: its server stops when the
/// process exits. The same Err every time when it could not start.
pub fn shared() -> Result<&'static Cluster, String> {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match SHARED.get_or_init(Cluster::start) {
        Ok(cluster) => Ok(cluster),
        Err(e) => Err(e.clone()),
    }
}

/// The directory of PostgreSQL's programs (`initdb`, `postgres`,
/// `pg_ctl`, `pg_isready`): `$AETHER_PG_BIN` if set, else `pg_config
/// --bindir` if it holds `initdb`, else the highest
/// `/usr/lib/postgresql/*/bin` holding `initdb`, else the directory of the
/// `initdb` found through `PATH` (symbolic links resolved). Err saying so
/// when PostgreSQL is not installed: tests then call
/// [`crate::skip_or_fail`].
pub fn bin_dir() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_bin_dir).clone()
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("AETHER_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "AETHER_PG_BIN is {}, which holds no initdb",
                dir.display()
            ))
        };
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(initdb) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("initdb"))
        .find(|p| p.is_file())
    {
        let initdb = initdb.canonicalize().unwrap_or(initdb);
        if let Some(dir) = initdb.parent() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(
        "PostgreSQL is not installed: no initdb in $AETHER_PG_BIN, `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin or PATH (Debian: apt-get install postgresql; .ci/run \
         installs it)"
            .to_owned(),
    )
}

/// Whether this process's effective uid is 0, from `/proc/self/status`
/// (`id -u` where there is no /proc).
fn effective_uid_is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(uids) = status.lines().find_map(|l| l.strip_prefix("Uid:"))
        && let Some(effective) = uids.split_whitespace().nth(1)
    {
        return effective == "0";
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user if `as_postgres` (this process
/// is root), in `dir` (PostgreSQL's programs fail in a current directory
/// they cannot read), with stdin from /dev/null.
fn run_as(as_postgres: bool, dir: &Path, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Err with the command's output unless it succeeded.
fn check(what: &str, out: &Output) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Waits up to `timeout` for `child` to exit.
fn wait_for(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return None,
        }
    }
}

/// `path`'s text from byte `offset` on ("" when unreadable).
fn log_since(path: &Path, offset: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_to_end(&mut text));
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// A directory made under `std::env::temp_dir()` (mode 0755, so the
/// `postgres` user can reach it once it owns it) and removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, String> {
        use std::os::unix::fs::PermissionsExt as _;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "aether-pg-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let dir = TempDir { path };
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod 0755 {}: {e}", dir.path.display()))?;
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::Cluster;
    use std::io::{BufRead as _, Write as _};
    use std::time::{Duration, Instant};

    /// Cluster::start, or None after skip_or_fail when PostgreSQL is not
    /// installed here.
    fn start() -> Option<Cluster> {
        if let Err(reason) = super::bin_dir() {
            crate::skip_or_fail(&reason);
            return None;
        }
        let started = Instant::now();
        let cluster = Cluster::start().expect("PostgreSQL starts");
        eprintln!("Cluster::start took {:?}", started.elapsed());
        Some(cluster)
    }

    fn accepts_connections(port: u16) -> bool {
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
            .is_ok()
    }

    #[test]
    fn start_create_stop_resume() {
        let Some(mut cluster) = start() else { return };
        let port = cluster.port();
        assert_eq!(
            cluster.url(),
            format!("postgres://postgres@127.0.0.1:{port}/postgres")
        );
        assert_eq!(cluster.psql("postgres", "select 1").unwrap(), "1\n");
        assert_eq!(cluster.psql("postgres", "show fsync").unwrap(), "on\n");
        assert_eq!(
            cluster.psql("postgres", "show max_connections").unwrap(),
            "200\n"
        );

        let url = cluster.create_database("things").unwrap();
        assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/things"));
        cluster
            .psql(
                "things",
                "create table t (x int); insert into t values (42)",
            )
            .unwrap();
        let err = cluster.create_database("things").unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        let fresh = cluster.fresh_database("fresh").unwrap();
        let name = fresh.rsplit('/').next().unwrap();
        assert!(name.starts_with("fresh_"), "{fresh}");
        assert_ne!(cluster.fresh_database("fresh").unwrap(), fresh);
        assert_eq!(cluster.psql(name, "select 2").unwrap(), "2\n");

        let started = Instant::now();
        cluster.stop().unwrap();
        eprintln!("Cluster::stop took {:?}", started.elapsed());
        assert!(!accepts_connections(port));
        let err = cluster.psql("postgres", "select 1").unwrap_err();
        assert!(err.contains("psql"), "{err}");
        cluster.stop().unwrap();

        let started = Instant::now();
        cluster.resume().unwrap();
        eprintln!("Cluster::resume took {:?}", started.elapsed());
        assert_eq!(cluster.port(), port);
        assert_eq!(cluster.psql("things", "select x from t").unwrap(), "42\n");
        cluster.resume().unwrap();

        let dir = cluster.dir.path.clone();
        assert!(dir.join("data/PG_VERSION").exists());
        assert!(
            std::fs::read_to_string(dir.join("postgres.log"))
                .unwrap()
                .contains("database system is ready to accept connections")
        );
        drop(cluster);
        assert!(!dir.exists(), "{} left behind", dir.display());
        assert!(!accepts_connections(port));
    }

    #[test]
    fn shared_is_one_cluster() {
        if let Err(reason) = super::bin_dir() {
            crate::skip_or_fail(&reason);
            return;
        }
        let a = super::shared().unwrap();
        let b = super::shared().unwrap();
        assert!(std::ptr::eq(a, b));
        let url = a.fresh_database("shared").unwrap();
        let name = url.rsplit('/').next().unwrap();
        assert_eq!(a.psql(name, "select 3").unwrap(), "3\n");
    }

    #[test]
    #[should_panic(expected = "must match [a-z0-9_]+")]
    fn database_names_are_checked() {
        let Ok(cluster) = super::shared() else {
            panic!("must match [a-z0-9_]+ (no PostgreSQL here: nothing else to check)");
        };
        let _ = cluster.create_database("x; drop database postgres");
    }

    /// Started by `the_server_dies_with_its_process`: starts a cluster,
    /// prints its port and directory, then waits to be killed.
    #[test]
    #[ignore = "run by the_server_dies_with_its_process"]
    fn server_child() {
        let cluster = Cluster::start().expect("PostgreSQL starts");
        // Straight to stdout: the harness would capture println!.
        let mut out = std::io::stdout();
        writeln!(
            out,
            "AETHER_PG_CHILD {} {}",
            cluster.port(),
            cluster.dir.path.display()
        )
        .unwrap();
        out.flush().unwrap();
        // Killed long before; bounded should the parent die first.
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn the_server_dies_with_its_process() {
        if let Err(reason) = super::bin_dir() {
            crate::skip_or_fail(&reason);
            return;
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "postgres::tests::server_child",
                "--test-threads=1",
                "--nocapture",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        let mut started = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            // After the harness's "test ... " on the same line.
            if let Some((_, rest)) = line.split_once("AETHER_PG_CHILD ") {
                let (port, dir) = rest.split_once(' ').unwrap();
                started = Some((port.parse::<u16>().unwrap(), std::path::PathBuf::from(dir)));
                break;
            }
        }
        let Some((port, dir)) = started else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child started no cluster:\n{seen}");
        };
        assert!(accepts_connections(port), "child's server on {port}");
        child.kill().unwrap(); // SIGKILL: no destructor runs
        child.wait().unwrap();

        let killed = Instant::now();
        while (accepts_connections(port) || dir.exists())
            && killed.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let listening = accepts_connections(port);
        let left = dir.exists();
        if listening || left {
            // Clean up before failing.
            let pg_ctl = super::bin_dir().unwrap().join("pg_ctl");
            let _ = super::run_as(super::effective_uid_is_root(), &dir, pg_ctl)
                .args(["stop", "-m", "immediate", "-D"])
                .arg(dir.join("data"))
                .status();
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert!(
            !listening,
            "the server on {port} outlived its process by 10 s"
        );
        assert!(!left, "{} outlived its process by 10 s", dir.display());
        eprintln!(
            "the server and its directory were gone {:?} after the kill",
            killed.elapsed()
        );
    }
}

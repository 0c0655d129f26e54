//! The HTTP server under hostile or careless clients (issue #10): idle connections and clients
//! that send their headers a byte at a time must not keep `/healthz` from answering, nor hold
//! descriptors for ever. Loopback only.
//!
//! No test measures time. The crowd tests count what the server holds open, with timeouts that
//! never fire during the test, so only the connection cap can have closed anything. The timeout
//! tests run on tokio's paused clock, which moves only when every task is waiting (to the next
//! timer), so "closed at the timeout, not before" is exact on any machine, however slow.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ebbflow::controller::http::{AppState, Limits, router, serve_on};
use prometheus_client::registry::Registry;

/// The two tests that open hundreds of connections run one at a time: on a small machine, sharing
/// it made each one's timing depend on the other.
static CROWD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A timeout that never fires during a test.
const NEVER: Duration = Duration::from_secs(3600);

/// How long to wait for what the server does at once before calling it a failure. A hang guard,
/// not a measure of speed: a slow machine only uses more of it.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn start(limits: Limits) -> SocketAddr {
    let state = AppState { registry: Arc::new(Registry::default()), ready: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_on(listener, router(state, axum::Router::new()), limits, std::future::pending()));
    addr
}

/// GET `/healthz` on a new connection: the status line, or why not.
async fn healthz(addr: SocketAddr) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(HANG_GUARD)).map_err(|e| e.to_string())?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    })
    .await
    .expect("client thread")
}

/// Whether the server has closed `s` (EOF) rather than left it open.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// How many of `conns` the server still holds open, once that is at most `cap` (or, failing
/// that, once [`HANG_GUARD`] has passed).
async fn open_after_settling(conns: &mut [TcpStream], cap: usize) -> usize {
    let until = Instant::now() + HANG_GUARD;
    let mut closed = vec![false; conns.len()];
    loop {
        for (c, done) in conns.iter_mut().zip(closed.iter_mut()) {
            *done = *done || closed_by_server(c);
        }
        let open = closed.iter().filter(|c| !**c).count();
        if open <= cap || Instant::now() >= until {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 600 idle connections and 50 clients sending their headers a byte at a time, against a cap of
/// 64: the server keeps at most the cap open (the longest idle are closed to admit new ones, so
/// descriptors stay bounded), and `/healthz` on a new connection is answered, every time. The
/// header and idle timeouts never fire here, so every connection closed was closed by the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_idle_and_slow_clients_crowd_the_server() {
    let _crowd = CROWD.lock().await;
    let limits = Limits {
        max_connections: 64,
        header_timeout: NEVER,
        idle_timeout: NEVER,
        shutdown_grace: Duration::from_secs(1),
    };
    let addr = start(limits).await;

    let mut idle: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..600).map(|_| TcpStream::connect(addr).expect("connect")).collect::<Vec<_>>()
    })
    .await
    .expect("connect thread");
    let still_open = open_after_settling(&mut idle, 64).await;
    assert!(still_open <= 64, "{still_open} of 600 idle connections held open; the cap is 64");

    // Slow clients: one header byte every 100 ms, never finishing within the test.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for _ in 0..50 {
        let (stop, started) = (stop.clone(), started.clone());
        slow.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let connected = tokio::net::TcpStream::connect(addr).await;
            started.fetch_add(1, Ordering::SeqCst);
            let Ok(mut s) = connected else { return };
            let request =
                b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            for byte in request.iter().cycle().take(60) {
                if stop.load(Ordering::Relaxed) || s.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // Probe once every slow client has connected (a hang guard bounds the wait).
    let until = Instant::now() + HANG_GUARD;
    while started.load(Ordering::SeqCst) < 50 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(started.load(Ordering::SeqCst), 50, "the slow clients never connected");

    for i in 0..5 {
        let status = healthz(addr).await.unwrap_or_else(|e| panic!("probe {i}: no answer: {e}"));
        assert!(status.starts_with("HTTP/1.1 200"), "probe {i}: {status:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for s in slow {
        s.await.expect("slow client");
    }
}

/// The production connection cap against the numbers: 1,100 idle connections leave at
/// most 512 open on the server (so descriptors stay bounded whatever the clients do), and
/// `/healthz` still answers. The timeouts are set never to fire, so only the cap closes
/// connections. Needs about 1,700 descriptors for the test process itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_cap_1100_idle_connections_at_512() {
    let _crowd = CROWD.lock().await;
    let soft_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("Max open files")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse::<u64>().ok()));
    if soft_limit.is_some_and(|n| n < 2048) {
        eprintln!("skipped: the test process may open only {soft_limit:?} files; it needs about 1,700");
        return;
    }
    let limits = Limits { header_timeout: NEVER, idle_timeout: NEVER, ..Limits::default() };
    assert_eq!(limits.max_connections, 512);
    let addr = start(limits).await;
    let mut idle: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..1100).map(|_| TcpStream::connect(addr).expect("connect")).collect::<Vec<_>>()
    })
    .await
    .expect("connect thread");
    let still_open = open_after_settling(&mut idle, 512).await;
    assert!(still_open <= 512, "{still_open} of 1,100 idle connections held open; the cap is 512");
    let status = healthz(addr).await.unwrap_or_else(|e| panic!("no answer: {e}"));
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
}

/// Read `conn` until the server closes it (EOF, or a reset when it closed with bytes unread):
/// how long that took on the runtime's clock. Without a timeout of its own: on the paused clock a
/// timer of the client's could be the next one the clock jumps to. The server's other timeout
/// (30 s in both tests below) closes the connection if the one under test does not, and the
/// assertion then fails.
async fn closed_after(conn: &mut (impl tokio::io::AsyncRead + Unpin)) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

/// On the paused clock: at the timeout, not before, and not later than the client's next step.
#[track_caller]
fn at_the_timeout(what: &str, closed: Duration, timeout: Duration) {
    assert!(
        closed >= timeout && closed < timeout + Duration::from_millis(500),
        "{what}: closed after {closed:?}, the timeout is {timeout:?}"
    );
}

/// A connection that never sends a byte, and one that sends its headers a byte every 100 ms and
/// never finishes, are both closed at the header timeout, not before (paused clock).
#[tokio::test(start_paused = true)]
async fn connections_that_do_not_finish_their_headers_are_closed_at_the_header_timeout() {
    let header_timeout = Duration::from_secs(1);
    let addr = start(Limits { header_timeout, idle_timeout: Duration::from_secs(30), ..Limits::default() }).await;

    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    at_the_timeout("a silent connection", closed_after(&mut silent).await, header_timeout);

    let (mut reader, mut writer) = tokio::net::TcpStream::connect(addr).await.expect("connect").into_split();
    let trickle = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ".iter().cycle().take(40) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    at_the_timeout("a client trickling its headers", closed_after(&mut reader).await, header_timeout);
    trickle.abort();
}

/// A kept-alive connection with no traffic after its response is closed at the idle timeout, not
/// before (paused clock; the header timeout, which also runs after a response, is 30 s here).
#[tokio::test(start_paused = true)]
async fn idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let idle_timeout = Duration::from_secs(1);
    let addr = start(Limits { header_timeout: Duration::from_secs(30), idle_timeout, ..Limits::default() }).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    at_the_timeout("an idle kept-alive connection", closed_after(&mut s).await, idle_timeout);
}

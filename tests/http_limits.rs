//! The HTTP server under hostile or careless clients (issue #10): idle connections and clients
//! that send their headers a byte at a time must not keep `/healthz` from answering, nor hold
//! descriptors for ever. Loopback only; short limits so the test takes seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebbflow::controller::http::{AppState, Limits, router, serve_on};
use prometheus_client::registry::Registry;

/// The two tests that open hundreds of connections run one at a time: on a small machine, sharing
/// it made each one's timing depend on the other.
static CROWD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(limits: Limits) -> SocketAddr {
    let state = AppState { registry: Arc::new(Registry::default()), ready: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_on(listener, router(state, axum::Router::new()), limits, std::future::pending()));
    addr
}

/// GET `/healthz` on a new connection; the status line, or why not, and how long it took.
async fn healthz(addr: SocketAddr) -> (Result<String, String>, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = (|| {
            let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(3))).map_err(|e| e.to_string())?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok(out.lines().next().unwrap_or_default().to_string())
        })();
        (result, started.elapsed())
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

/// How many of `conns` the server still holds open, once that is at most `cap` or at `until`.
async fn open_after_settling(conns: &mut [TcpStream], cap: usize, until: Instant) -> usize {
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

/// Wait until the server closes `s` (or `limit` passes); how long that took.
fn time_to_close(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) if started.elapsed() < limit => return Some(started.elapsed()),
            Ok(_) => continue,
            _ => return None,
        }
    }
}

/// 600 idle connections and 50 clients sending their headers a byte at a time, against a cap of
/// 64: the server keeps at most the cap open (the longest idle are closed to admit new ones, so
/// descriptors stay bounded), and `/healthz` on a new connection answers at once, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_idle_and_slow_clients_crowd_the_server() {
    let _crowd = CROWD.lock().await;
    let header_timeout = Duration::from_secs(10);
    let limits = Limits {
        max_connections: 64,
        header_timeout,
        idle_timeout: Duration::from_secs(20),
        shutdown_grace: Duration::from_secs(1),
    };
    let addr = start(limits).await;

    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..600).map(|_| TcpStream::connect(addr).expect("connect")).collect::<Vec<_>>()
    })
    .await
    .expect("connect thread");
    // Let the accept loop catch up, before the first connection's header timeout (after which
    // all would be closed anyway, and the count would prove nothing).
    let deadline = (Instant::now() + Duration::from_secs(3)).min(opened + header_timeout - Duration::from_secs(1));
    let still_open = open_after_settling(&mut idle, 64, deadline).await;
    assert!(
        opened.elapsed() < header_timeout,
        "the check ran after the header timeout ({still_open} open after {:?})",
        opened.elapsed()
    );
    assert!(still_open <= 64, "{still_open} of 600 idle connections held open; the cap is 64");

    // Slow clients: one header byte every 100 ms, never finishing within the test.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow = Vec::new();
    for _ in 0..50 {
        let stop = stop.clone();
        slow.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return };
            let request =
                b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            for byte in request.iter().cycle().take(60) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || s.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 0..5 {
        let (status, took) = healthz(addr).await;
        let status = status.unwrap_or_else(|e| panic!("probe {i}: no answer: {e}"));
        assert!(status.starts_with("HTTP/1.1 200"), "probe {i}: {status}");
        assert!(took < Duration::from_secs(2), "probe {i} took {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in slow {
        s.await.expect("slow client");
    }
}

/// The production limits against the numbers: 1,100 idle connections leave at most 512
/// open on the server (so descriptors stay bounded whatever the clients do), and `/healthz`
/// still answers at once. Needs about 1,700 descriptors for the test process itself.
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
    let limits = Limits::default();
    assert_eq!(limits.max_connections, 512);
    let header_timeout = limits.header_timeout;
    let addr = start(limits).await;
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..1100).map(|_| TcpStream::connect(addr).expect("connect")).collect::<Vec<_>>()
    })
    .await
    .expect("connect thread");
    let deadline = (Instant::now() + Duration::from_secs(3)).min(opened + header_timeout - Duration::from_secs(1));
    let still_open = open_after_settling(&mut idle, 512, deadline).await;
    assert!(opened.elapsed() < header_timeout, "the check ran after the header timeout ({:?})", opened.elapsed());
    assert!(still_open <= 512, "{still_open} of 1,100 idle connections held open; the cap is 512");
    let (status, took) = healthz(addr).await;
    let status = status.unwrap_or_else(|e| panic!("no answer: {e}"));
    assert!(status.starts_with("HTTP/1.1 200") && took < Duration::from_secs(2), "{status} after {took:?}");
}

/// A connection that never sends a byte, and one that sends its headers a byte at a time and
/// never finishes, are both closed once the header timeout has passed (and not long after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_do_not_finish_their_headers_are_closed() {
    let header_timeout = Duration::from_secs(1);
    let addr = start(Limits { header_timeout, idle_timeout: Duration::from_secs(30), ..Limits::default() }).await;
    let (silent, trickle) = tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(addr).expect("connect");
        let silent_closed = time_to_close(&mut silent, Duration::from_secs(4));

        let mut trickle = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        let mut trickle_closed = None;
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ".iter().cycle().take(40) {
            if trickle.write_all(&[*byte]).is_err() || closed_by_server(&mut trickle) {
                trickle_closed = Some(started.elapsed());
                break;
            }
            trickle.set_nonblocking(false).expect("blocking");
            std::thread::sleep(Duration::from_millis(100));
        }
        (silent_closed, trickle_closed)
    })
    .await
    .expect("client thread");
    let silent = silent.expect("a silent connection stayed open past 4 s");
    assert!(silent >= header_timeout - Duration::from_millis(100) && silent < Duration::from_secs(3), "{silent:?}");
    let trickle = trickle.expect("a client trickling its headers stayed open for 4 s");
    assert!(trickle >= header_timeout - Duration::from_millis(100) && trickle < Duration::from_secs(3), "{trickle:?}");
}

/// A kept-alive connection with no traffic after its response is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_is_closed() {
    let idle_timeout = Duration::from_secs(1);
    let addr = start(Limits { header_timeout: Duration::from_secs(30), idle_timeout, ..Limits::default() }).await;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("response");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        time_to_close(&mut s, Duration::from_secs(4))
    })
    .await
    .expect("client thread");
    let closed = closed.expect("an idle keep-alive connection stayed open past 4 s");
    assert!(closed >= idle_timeout - Duration::from_millis(100) && closed < Duration::from_secs(3), "{closed:?}");
}

//! The HTML index in headless Chromium (Debian's `chromium`): it renders the top group, the inline
//! script draws the chart from the sampled history (it writes `data-points` on the chart), and
//! hostile labels and frame names stay text: escaped in the DOM, and no script of theirs ran.
//!
//! Without `chromium` the test prints a notice and passes, except under CI, where it fails.
//! The screenshot is left at `$CARGO_TARGET_TMPDIR/page/index.png`.
#![forbid(unsafe_code)]

mod http_client;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use taskprof::server::{Server, ServerConfig};
use taskprof_tests::{column_of, multi_thread, spawned_at, wait_for};
use tokio::process::Command;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

const SRC: &str = include_str!("page.rs");
const FILE: &str = file!();

/// Sets a marker on the document if it ever runs as markup.
const HOSTILE_LABEL: &str = "<script>alert(1)</script><script>document.documentElement.setAttribute('data-pwned','script')</script><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">";

#[taskprof::track]
async fn page_wait(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

#[taskprof::track(name = "<b id=\"pwned-frame\">bold</b>")]
async fn hostile_frame(mut rx: broadcast::Receiver<()>) {
    let _ = rx.recv().await;
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs headless Chromium with a fresh profile and the flags this machine needs, plus `args`.
async fn chromium(args: &[&str], profile: &str) -> String {
    let user_data = scratch().join(profile);
    let _ = std::fs::remove_dir_all(&user_data);
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", user_data.display()))
    .args(args)
    .stdin(Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("chromium finished within 120 s")
        .expect("run chromium");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of `attr="…"` on the element with `id="chart"` in `dom`.
fn chart_attr(dom: &str, attr: &str) -> Option<usize> {
    let start = dom.find("id=\"chart\"")?;
    let tag_start = dom[..start].rfind('<')?;
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>')?];
    let key = format!("{attr}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    v[..v.find('"')?].parse().ok()
}

#[test]
fn index_renders_in_headless_chromium_with_chart_and_inert_hostile_text() {
    if !http_client::have_chromium() {
        return;
    }
    multi_thread(2).block_on(async {
        let config = ServerConfig::default().sample_interval(Duration::from_millis(100));
        let server = Server::bind(":0", config).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let serving = tokio::spawn(server.run());

        let (tx, rx) = broadcast::channel::<()>(1);
        let mut handles: Vec<JoinHandle<()>> = Vec::new();
        // Site A leaks one task every 200 ms while the sampler watches: a rising line.
        let a = line!() + 2;
        for _ in 0..6 {
            handles.push(taskprof::spawn(page_wait(rx.resubscribe())));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let b = line!() + 2;
        for _ in 0..2 {
            handles.push(taskprof::spawn(taskprof::labels::with(
                &[("evil", HOSTILE_LABEL)],
                hostile_frame(rx.resubscribe()),
            )));
        }
        wait_for("tasks parked", |s| {
            let at_a = spawned_at(s, FILE, a);
            let at_b = spawned_at(s, FILE, b);
            (at_a.len() == 6 && at_b.len() == 2 && at_b.iter().all(|t| t.stack().len() == 1))
                .then_some(())
        })
        .await;

        // Let the sampler record a few points with the tasks alive.
        let url = format!("http://{addr}/debug/tasks/");
        let start = Instant::now();
        loop {
            let html = http_client::get(addr, "/debug/tasks/", &[]).await.text();
            if chart_attr(&html, "data-samples").is_some_and(|n| n >= 5) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no samples:\n{html}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let dom = chromium(&["--dump-dom", &url], "dump").await;
        std::fs::write(scratch().join("index.dom.html"), &dom).expect("save DOM");
        let site_a = format!("{FILE}:{a}:{}", column_of(SRC, a, "taskprof::spawn("));

        // The chart was drawn by the inline script from the embedded samples.
        let points = chart_attr(&dom, "data-points").expect("data-points on #chart");
        let samples = chart_attr(&dom, "data-samples").expect("data-samples on #chart");
        assert!(
            samples >= 5 && points >= samples,
            "points {points}, samples {samples}"
        );
        assert!(
            chart_attr(&dom, "data-series").is_some_and(|n| n >= 2),
            "total + a site"
        );
        assert!(dom.contains("<polyline"), "chart lines");
        assert!(
            dom.contains(&format!("data-site=\"{site_a}\"")),
            "top site's line"
        );
        let legend = &dom[dom.find("<ul id=\"legend\">").expect("legend")..];
        let legend = &legend[..legend.find("</ul>").expect("legend end")];
        assert!(legend.contains("all tasks — 8</li>"), "{legend}");
        assert!(legend.contains(&format!("{site_a} — 6</li>")), "{legend}");

        // The top group, first row: 6 tasks at site A, waiting in page_wait.
        let first_row = &dom[dom.find("<tr id=\"g0\">").expect("group rows")..];
        let first_row = &first_row[..first_row.find("</tr>").expect("row end")];
        assert!(first_row.contains("<td class=\"n\">6</td>"), "{first_row}");
        assert!(first_row.contains(&format!(">{site_a}</a>")), "{first_row}");
        assert!(first_row.contains("page::page_wait"), "{first_row}");
        assert!(dom.contains("<span id=\"total\">8</span>"), "total");

        // Hostile text is text: escaped in the DOM, no element made of it, no marker set.
        assert!(
            dom.contains("evil=&lt;script&gt;alert(1)&lt;/script&gt;"),
            "escaped label"
        );
        assert!(
            dom.contains("&lt;img src=x onerror=\"document.documentElement"),
            "escaped img"
        );
        assert!(
            dom.contains("&lt;b id=\"pwned-frame\"&gt;bold&lt;/b&gt;"),
            "escaped frame name"
        );
        assert!(
            !dom.contains("<script>alert(1)"),
            "no injected script element"
        );
        assert!(!dom.contains("<img"), "no injected img element");
        assert!(!dom.contains("<b id"), "no injected b element");
        // The payloads would set `data-pwned="…"` on <html>; as text they only contain 'data-pwned'.
        assert!(!dom.contains("data-pwned=\""), "a hostile script ran");

        let shot = scratch().join("index.png");
        let _ = std::fs::remove_file(&shot);
        chromium(
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1200,1100",
                "--hide-scrollbars",
                &url,
            ],
            "shot",
        )
        .await;
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real screenshot"
        );
        println!("screenshot: {}", shot.display());

        drop(tx);
        for h in handles {
            h.await.expect("task");
        }
        serving.abort();
    });
}

//! `GET /debug/tasks/`: the HTML index. Self-contained (no external scripts, styles or fonts):
//! the chart is an SVG drawn by one inline script from JSON embedded in the page.
//!
//! Everything that comes from the program (labels, task and frame names, sites, URLs) is
//! HTML-escaped; URLs in links are percent-encoded first. The response's Content-Security-Policy
//! allows only the page's own script (by hash), so even a missed escape could not run a script.

use std::fmt::Write;

use serde_json::Value;

use crate::Snapshot;
use crate::profile::Age;

/// The chart script. Its SHA-256 is in [`CSP`]; a unit test keeps the two in step.
pub(crate) const SCRIPT: &str = r#"
(function () {
  var chart = document.getElementById('chart');
  var legend = document.getElementById('legend');
  var data = JSON.parse(document.getElementById('chart-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var W = 760, H = 240, L = 52, R = 16, T = 14, B = 30;
  var colors = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#bcbd22'];
  function add(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    chart.appendChild(e);
    return e;
  }
  var n = data.t.length, max = 1;
  data.total.forEach(function (v) { if (v > max) max = v; });
  var t1 = n ? data.t[n - 1] : 1, t0 = n ? data.t[0] : 0;
  if (t1 <= t0) t0 = t1 - 1000;
  function x(t) { return L + (W - L - R) * (t - t0) / (t1 - t0); }
  function y(v) { return T + (H - T - B) * (1 - v / max); }
  add('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#888' });
  add('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#888' });
  add('text', { x: L - 6, y: T + 4, 'text-anchor': 'end', 'font-size': 11 }, String(max));
  add('text', { x: L - 6, y: H - B + 4, 'text-anchor': 'end', 'font-size': 11 }, '0');
  add('text', { x: L, y: H - 10, 'font-size': 11 },
      n ? '-' + Math.round((t1 - t0) / 1000) + 's' : 'no samples yet');
  add('text', { x: W - R, y: H - 10, 'text-anchor': 'end', 'font-size': 11 }, 'now');
  var drawn = 0, lines = 0;
  function draw(name, points, color, dashed) {
    var pts = [];
    points.forEach(function (v, i) {
      if (v !== null) pts.push(x(data.t[i]).toFixed(1) + ',' + y(v).toFixed(1));
    });
    if (!pts.length) return;
    var attrs = { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2 };
    if (dashed) attrs['stroke-dasharray'] = '4 3';
    add('polyline', attrs).setAttribute('data-site', name);
    var last = pts[pts.length - 1].split(',');
    add('circle', { cx: last[0], cy: last[1], r: 3, fill: color });
    drawn += pts.length;
    lines += 1;
    var item = document.createElement('li');
    var swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = color;
    item.appendChild(swatch);
    var now = points[points.length - 1];
    item.appendChild(document.createTextNode(name + (now === null ? '' : ' \u2014 ' + now)));
    legend.appendChild(item);
  }
  draw('all tasks', data.total, '#777', true);
  data.series.forEach(function (s, i) { draw(s.site, s.points, colors[i % colors.length], false); });
  chart.setAttribute('data-points', String(drawn));
  chart.setAttribute('data-series', String(lines));
})();
"#;

/// `script-src` allows exactly [`SCRIPT`] by its hash.
pub(crate) const CSP: &str = "default-src 'none'; \
    script-src 'sha256-0z99iBudugu/gU2upaWSGutOqR0csXDWkMGgloeF+1k='; \
    style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
nav a { margin-right: .8em; }
.summary span { font-weight: 600; }
#chart { border: 1px solid #ddd; background: #fcfcfc; max-width: 100%; }
#legend { list-style: none; padding: 0; margin: .3em 0; font: 12px ui-monospace, monospace; }
#legend li { margin: .15em 0; }
.swatch { display: inline-block; width: 1.6em; height: .6em; margin-right: .5em; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; border-bottom: 1px solid #eee; }
td.n { text-align: right; font-weight: 600; font-variant-numeric: tabular-nums; }
.stack { font: 12px ui-monospace, monospace; white-space: pre; margin: 0; }
.labels, .site { font: 12px ui-monospace, monospace; }
.lost { color: #b00; font-weight: 600; }
.note { color: #a50; }
";

/// What the index shows besides the snapshot.
pub(crate) struct Page<'a> {
    pub(crate) snap: &'a Snapshot,
    pub(crate) spawned: u64,
    pub(crate) completed: u64,
    pub(crate) uptime: std::time::Duration,
    pub(crate) chart: Value,
    pub(crate) samples: usize,
    pub(crate) max_groups: usize,
}

/// Renders the index page.
pub(crate) fn render(page: &Page<'_>) -> String {
    let snap = page.snap;
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>taskprof: {total} tasks</title><style>{STYLE}</style></head><body>\n\
         <h1>taskprof</h1>\n\
         <p class=\"summary\"><span id=\"total\">{total}</span> live tasks \u{b7} \
         <span>{spawned}</span> spawned \u{b7} <span>{completed}</span> ended \u{b7} \
         <span>{groups}</span> groups \u{b7} up {uptime}</p>\n\
         <nav>profile: <a href=\"profile?debug=1\">grouped</a>\
         <a href=\"profile?debug=2\">per task</a>\
         <a href=\"profile\">pprof</a>\
         <a href=\"profile?format=json\">JSON</a>\
         <a href=\"profile?seconds=10&amp;debug=1\">growth over 10 s</a>\
         \u{b7} <a href=\"metrics\">metrics</a><a href=\"health\">health</a></nav>\n",
        total = snap.total(),
        spawned = page.spawned,
        completed = page.completed,
        groups = snap.groups().len(),
        uptime = Age(page.uptime),
    );

    let _ = write!(
        out,
        "<h2>Live tasks by spawn site</h2>\n\
         <svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"240\" \
         viewBox=\"0 0 760 240\" role=\"img\" aria-label=\"live tasks over time\" \
         data-samples=\"{}\" data-points=\"0\"></svg>\n<ul id=\"legend\"></ul>\n\
         <script type=\"application/json\" id=\"chart-data\">{}</script>\n\
         <script>{SCRIPT}</script>\n",
        page.samples,
        script_json(&page.chart),
    );

    let groups = snap.groups();
    let shown = groups.len().min(page.max_groups);
    let _ = write!(
        out,
        "<h2>Top groups</h2>\n<table id=\"groups\"><thead><tr><th>tasks</th><th>spawned at</th>\
         <th>waiting in (innermost first)</th><th>labels</th><th>oldest</th></tr></thead><tbody>\n"
    );
    for (i, g) in groups.iter().take(shown).enumerate() {
        let site = super::site_text(g.spawn_site());
        let href = format!("profile?debug=2&site={}", percent_encode(&site));
        let _ = write!(
            out,
            "<tr id=\"g{i}\"><td class=\"n\">{count}</td><td class=\"site\">\
             <a href=\"{href}\">{site}</a><br><a href=\"{json}\">json</a>",
            count = g.count(),
            href = Html(&href),
            site = Html(&site),
            json = Html(&format!(
                "profile?format=json&site={}",
                percent_encode(&site)
            )),
        );
        if g.lost_waker() {
            out.push_str("<br><span class=\"lost\">lost waker</span>");
        }
        out.push_str("</td><td><pre class=\"stack\">");
        if g.stack().is_empty() {
            out.push_str("(no tracked frame)");
        }
        for (j, f) in g.stack().iter().enumerate() {
            if j > 0 {
                out.push('\n');
            }
            let _ = write!(
                out,
                "{}  {}:{}:{}",
                Html(f.label()),
                Html(f.file()),
                f.line(),
                f.column()
            );
            if let Some(text) = f.awaiting() {
                let _ = write!(out, "  await {}", Html(text));
            }
        }
        out.push_str("</pre></td><td class=\"labels\">");
        for (j, (k, v)) in g.labels().iter().enumerate() {
            if j > 0 {
                out.push_str("<br>");
            }
            let _ = write!(out, "{}={}", Html(k), Html(v));
        }
        let _ = writeln!(out, "</td><td>{}</td></tr>", Age(g.oldest()));
    }
    out.push_str("</tbody></table>\n");
    if shown < groups.len() {
        let rest: usize = groups[shown..].iter().map(|g| g.count()).sum();
        let _ = writeln!(
            out,
            "<p class=\"note\" id=\"capped\">Showing the top {shown} of {} groups; {} more \
             groups with {rest} tasks are in <a href=\"profile?debug=0\">pprof</a> and \
             <a href=\"profile?format=json\">JSON</a>.</p>",
            groups.len(),
            groups.len() - shown
        );
    }
    if groups.is_empty() {
        out.push_str("<p>No live tracked tasks.</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` as `\u00XX`, so no
/// string in it can close the element. Those characters only occur inside JSON strings, where the
/// escapes mean the same characters.
fn script_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// Text escaped for HTML content and quoted attribute values.
pub(crate) struct Html<'a>(pub(crate) &'a str);

impl std::fmt::Display for Html<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A query-string value: everything but RFC 3986's unreserved characters percent-encoded.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{CSP, Html, SCRIPT, percent_encode, script_json};
    use sha2::{Digest, Sha256};

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn csp_hash_matches_the_script() {
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        assert!(
            CSP.contains(&format!("'sha256-{hash}'")),
            "update CSP to 'sha256-{hash}'"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            Html("<script>alert('x\")</script>&").to_string(),
            "&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;"
        );
        assert_eq!(
            percent_encode("src/a b.rs:1:2&x=<"),
            "src%2Fa%20b.rs%3A1%3A2%26x%3D%3C"
        );
        let v = serde_json::json!({"site": "</script><script>alert(1)</script>&"});
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, v);
    }
}

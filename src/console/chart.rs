//! The dashboard's chart, drawn on the server as SVG: deliveries and
//! failures per bucket of the last day as bars. Presentation attributes
//! only (`fill`, `stroke`): under the console's `style-src 'self'` an
//! inline `style` would be ignored. Everything written is a number or a
//! fixed word, so the markup needs no escaping.

use std::fmt::Write;

use crate::store::Bucket;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 10.0;

/// The SVG of `series` (oldest first).
pub fn svg(series: &[Bucket]) -> String {
    let max = series
        .iter()
        .map(|b| b.delivered.max(b.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 6.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / series.len().max(1) as f64;
    let bar = (slot * 0.42).max(1.0);
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / max as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Deliveries and failures over the last 24 hours">"##
    );
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#bfc6d2" stroke-width="1"/><line x1="{LEFT}" y1="{TOP}" x2="{right}" y2="{TOP}" stroke="#e3e7ee" stroke-width="1"/>"##,
        base = TOP + plot_h,
        right = WIDTH - 6.0,
    );
    let _ = write!(
        s,
        r##"<text x="{x}" y="{ty}" font-size="11" fill="#5b6474" text-anchor="end">{max}</text><text x="{x}" y="{by}" font-size="11" fill="#5b6474" text-anchor="end">0</text>"##,
        x = LEFT - 6.0,
        ty = TOP + 4.0,
        by = TOP + plot_h,
    );
    for (i, b) in series.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.08;
        if b.delivered > 0 {
            let top = y(b.delivered);
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{top:.1}" width="{bar:.1}" height="{h:.1}" fill="#2456c7"><title>{n} delivered</title></rect>"##,
                h = TOP + plot_h - top,
                n = b.delivered,
            );
        }
        if b.failed > 0 {
            let top = y(b.failed);
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{top:.1}" width="{bar:.1}" height="{h:.1}" fill="#b3261e"><title>{n} failed</title></rect>"##,
                x = x + bar,
                h = TOP + plot_h - top,
                n = b.failed,
            );
        }
    }
    let label_y = HEIGHT - 6.0;
    for (frac, text) in [(0.0, "24 h ago"), (0.5, "12 h ago"), (1.0, "now")] {
        let anchor = match frac {
            0.0 => "start",
            1.0 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{label_y}" font-size="11" fill="#5b6474" text-anchor="{anchor}">{text}</text>"##,
            x = LEFT + plot_w * frac,
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{lx}" y="2" width="9" height="9" fill="#2456c7"/><text x="{tx}" y="10" font-size="11" fill="#1d2330">delivered</text><rect x="{lx2}" y="2" width="9" height="9" fill="#b3261e"/><text x="{tx2}" y="10" font-size="11" fill="#1d2330">failed</text></svg>"##,
        lx = WIDTH - 170.0,
        tx = WIDTH - 157.0,
        lx2 = WIDTH - 90.0,
        tx2 = WIDTH - 77.0,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_with_presentation_attributes_only() {
        let series: Vec<Bucket> = (0..48)
            .map(|i| Bucket {
                start_ms: i * 1_800_000,
                delivered: (i as u64) * 10,
                failed: u64::from(i % 7 == 0),
            })
            .collect();
        let svg = svg(&series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style"), "no inline styles under the CSP");
        assert_eq!(svg.matches("delivered</title>").count(), 47);
        assert_eq!(svg.matches("failed</title>").count(), 7);
        assert!(
            svg.contains(">470<"),
            "the scale's top is the largest count"
        );
        // An empty day still draws the axes.
        assert!(svg_of_nothing().contains("now"));
    }

    fn svg_of_nothing() -> String {
        svg(&[])
    }
}

//! Inline SVG charts for the status page, drawn on the server: series of `(x, y)` points as
//! polylines (straight or stepped), one marked circle per point, labelled axes. Every label
//! passes through [`escape`]; numbers are formatted here, never taken from input as text.
//! Every attribute value is quoted, so the markup reads the same as HTML and as XML (an
//! unquoted value before `/>` would swallow the slash: `y2=136/>` is `y2="136/"`).

use std::fmt::Write as _;

use super::escape;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;
const COLOURS: [&str; 6] = [
    "#1f6feb", "#d97706", "#16a34a", "#9333ea", "#dc2626", "#0891b2",
];

/// One point: `x` in seconds since the epoch, `y` in the chart's unit, and whether it is a halt
/// (drawn red, with its reason as the tooltip).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub note: String,
    pub halt: bool,
}

/// A named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// How points are joined: a share holds until the next transition (steps), a count per day
/// is a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Steps,
    Line,
}

/// A chart: series, the y range's top, horizontal guides (e.g. a rollout's stages), the x
/// range's end (e.g. now: the last value holds until then), and the unit label.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub class: &'a str,
    pub title: &'a str,
    pub series: &'a [Series],
    pub shape: Shape,
    pub y_max: f64,
    pub guides: &'a [(f64, String)],
    pub x_end: Option<f64>,
    pub x_label: fn(f64) -> String,
    pub y_label: fn(f64) -> String,
}

impl Chart<'_> {
    /// The `<svg>` element.
    pub fn render(&self) -> String {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.x));
        let x_min = xs.clone().fold(f64::INFINITY, f64::min);
        let x_max = xs
            .fold(f64::NEG_INFINITY, f64::max)
            .max(self.x_end.unwrap_or(f64::NEG_INFINITY));
        let mut out = format!(
            "<svg class=\"chart {}\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\">\
             <title>{}</title>",
            escape(self.class),
            escape(self.title)
        );
        if !x_min.is_finite() {
            out.push_str("<text x=\"10\" y=\"20\">no data</text></svg>");
            return out;
        }
        // One point or one instant: widen the range so the point sits in the middle.
        let (x_min, x_max) = if x_max > x_min {
            (x_min, x_max)
        } else {
            (x_min - 1.0, x_max + 1.0)
        };
        let y_max = if self.y_max > 0.0 { self.y_max } else { 1.0 };
        let px = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * (WIDTH - LEFT - RIGHT);
        let py = |y: f64| TOP + (1.0 - y / y_max) * (HEIGHT - TOP - BOTTOM);
        let bottom = HEIGHT - BOTTOM;
        let _ = write!(
            out,
            "<g class=\"axes\" stroke=\"#888\">\
             <line class=\"x-axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{x2}\" y2=\"{bottom}\"/>\
             <line class=\"y-axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/></g>\
             <g class=\"axis-labels\" font-size=\"10\" fill=\"#555\">\
             <text class=\"x-min\" x=\"{LEFT}\" y=\"{ly}\">{}</text>\
             <text class=\"x-max\" x=\"{x2}\" y=\"{ly}\" text-anchor=\"end\">{}</text>\
             <text class=\"y-max\" x=\"{yx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\
             <text class=\"y-min\" x=\"{yx}\" y=\"{bottom}\" text-anchor=\"end\">{}</text></g>",
            escape(&(self.x_label)(x_min)),
            escape(&(self.x_label)(x_max)),
            escape(&(self.y_label)(y_max)),
            escape(&(self.y_label)(0.0)),
            x2 = WIDTH - RIGHT,
            ly = HEIGHT - 8.0,
            yx = LEFT - 4.0,
            ty = TOP + 8.0,
        );
        for (y, label) in self.guides {
            let _ = write!(
                out,
                "<g class=\"guide\"><line x1=\"{LEFT}\" y1=\"{y0:.1}\" x2=\"{x2}\" y2=\"{y0:.1}\" stroke=\"#ddd\" stroke-dasharray=\"3\"/>\
                 <text x=\"{x2}\" y=\"{y0:.1}\" font-size=\"9\" fill=\"#999\">{}</text></g>",
                escape(label),
                y0 = py(*y),
                x2 = WIDTH - RIGHT + 2.0,
            );
        }
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut line = Vec::new();
            for (j, p) in series.points.iter().enumerate() {
                if self.shape == Shape::Steps && j > 0 {
                    line.push((px(p.x), py(series.points[j - 1].y)));
                }
                line.push((px(p.x), py(p.y)));
            }
            let last = series.points.last();
            if let (Some(end), Some(last)) = (self.x_end, last)
                && self.shape == Shape::Steps
                && end > last.x
            {
                line.push((px(end), py(last.y)));
            }
            let _ = write!(
                out,
                "<g class=\"series\" data-series=\"{}\"><polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"",
                escape(&series.name)
            );
            for (n, (x, y)) in line.iter().enumerate() {
                let _ = write!(out, "{}{x:.1},{y:.1}", if n > 0 { " " } else { "" });
            }
            out.push_str("\"/>");
            // Halts last, so a halt is drawn above a point of the same series at its place
            // (a rollout resumed within seconds of its halt would otherwise hide it).
            let (running, halts): (Vec<&Point>, Vec<&Point>) =
                series.points.iter().partition(|p| !p.halt);
            for p in running.into_iter().chain(halts) {
                let _ = write!(
                    out,
                    "<circle class=\"point{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>",
                    if p.halt { " halt" } else { "" },
                    px(p.x),
                    py(p.y),
                    if p.halt { "#dc2626" } else { colour },
                    escape(&p.note)
                );
            }
            if let Some(last) = last {
                let _ = write!(
                    out,
                    "<text class=\"current\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{colour}\">{}</text>",
                    px(self.x_end.unwrap_or(last.x).max(last.x)) + 3.0,
                    py(last.y) + 3.0,
                    escape(&(self.y_label)(last.y))
                );
            }
            out.push_str("</g>");
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            note: String::new(),
            halt: false,
        }
    }

    #[test]
    fn steps_hold_each_value_until_the_next_point_and_escape_labels() {
        let series = [Series {
            name: "<flag>".into(),
            points: vec![point(0.0, 0.0), point(10.0, 50.0)],
        }];
        let svg = Chart {
            class: "rollout",
            title: "a & b",
            series: &series,
            shape: Shape::Steps,
            y_max: 100.0,
            guides: &[],
            x_end: Some(20.0),
            x_label: |x| format!("{x}"),
            y_label: |y| format!("{y}%"),
        }
        .render();
        assert!(svg.contains("<title>a &amp; b</title>"), "{svg}");
        assert!(svg.contains("data-series=\"&lt;flag&gt;\""), "{svg}");
        // x 0..20 over 44..424, y 0..100 over 136..10: (0,0) (10,0) (10,50) (20,50).
        assert!(
            svg.contains("points=\"44.0,136.0 234.0,136.0 234.0,73.0 424.0,73.0\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">50%</text></g>"), "{svg}");
    }

    /// A rollout held, then resumed within seconds: both points sit at one place, and the
    /// halt must stay visible.
    #[test]
    fn a_halt_is_drawn_above_the_running_point_at_its_place() {
        let mut held = point(10.0, 5.0);
        held.halt = true;
        held.note = "held: health check".into();
        let series = [Series {
            name: "checkout-v2/progressive".into(),
            points: vec![point(0.0, 1.0), held, point(10.0, 5.0)],
        }];
        let svg = Chart {
            class: "rollout-chart",
            title: "t",
            series: &series,
            shape: Shape::Steps,
            y_max: 100.0,
            guides: &[(5.0, "stage 2".into())],
            x_end: Some(20.0),
            x_label: |x| format!("{x}"),
            y_label: |y| format!("{y}%"),
        }
        .render();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let circles: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .map(|n| (n.attribute("class"), n.attribute("cx"), n.attribute("cy")))
            .collect();
        assert_eq!(
            circles,
            [
                (Some("point"), Some("44.0"), Some("134.7")),
                (Some("point"), Some("234.0"), Some("129.7")),
                (Some("point halt"), Some("234.0"), Some("129.7")),
            ],
            "the later drawn is above: {svg}"
        );
    }
}

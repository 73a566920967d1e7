//! A small single-threaded metrics registry: counter, gauge and histogram families with
//! capped label sets, rendered in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

/// op-node's metric namespace with its default process name.
pub const NAMESPACE: &str = "op_node_default";

/// Label sets kept per family; further ones are dropped.
pub const MAX_SERIES: usize = 1000;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family in a `Registry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(usize);

/// The Prometheus metric types op-node uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A value that only goes up.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram with these upper bounds (ascending; `+Inf` is implied).
    Histogram(&'static [f64]),
}

#[derive(Debug, Clone)]
enum Series {
    Value(f64),
    Histogram {
        /// Per-bucket (non-cumulative) counts.
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    labels: &'static [&'static str],
    /// Label values and their series, sorted by label values (the text's order).
    series: Vec<(Vec<String>, Series)>,
}

/// Counter, gauge and histogram families with their label sets.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    families: Vec<Family>,
}

impl Registry {
    /// Adds a family; an unlabelled one is rendered (as 0) from the start, as Go's client does.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        kind: Kind,
        labels: &'static [&'static str],
    ) -> Id {
        let mut f = Family { name: name.into(), help: help.into(), kind, labels, series: Vec::new() };
        if labels.is_empty() {
            f.series.push((Vec::new(), empty_series(kind)));
        }
        self.families.push(f);
        Id(self.families.len() - 1)
    }

    /// Adds `v` to a counter or gauge.
    pub fn add(&mut self, id: Id, labels: &[&str], v: f64) {
        if let Some(Series::Value(x)) = self.series(id, labels) {
            *x += v;
        }
    }

    /// Adds one to a counter or gauge.
    pub fn inc(&mut self, id: Id, labels: &[&str]) {
        self.add(id, labels, 1.0);
    }

    /// Sets a gauge (or a counter mirrored from a count kept elsewhere).
    pub fn set(&mut self, id: Id, labels: &[&str], v: f64) {
        if let Some(Series::Value(x)) = self.series(id, labels) {
            *x = v;
        }
    }

    /// Records one observation in a histogram.
    pub fn observe(&mut self, id: Id, labels: &[&str], v: f64) {
        let Some(Kind::Histogram(bounds)) = self.families.get(id.0).map(|f| f.kind) else {
            return;
        };
        if let Some(Series::Histogram { counts, sum, count }) = self.series(id, labels) {
            if let Some(i) = bounds.iter().position(|b| v <= *b) {
                if let Some(c) = counts.get_mut(i) {
                    *c += 1;
                }
            }
            *sum += v;
            *count += 1;
        }
    }

    /// Sets a histogram series from counts kept elsewhere: `counts` per bucket (not cumulative,
    /// one per bound), their `sum` and total `count` (which includes observations past the last
    /// bound). A `counts` of the wrong length leaves the series as it was.
    pub fn set_histogram(&mut self, id: Id, labels: &[&str], counts: &[u64], sum: f64, count: u64) {
        let Some(Kind::Histogram(bounds)) = self.families.get(id.0).map(|f| f.kind) else {
            return;
        };
        if counts.len() != bounds.len() {
            return;
        }
        if let Some(Series::Histogram { counts: c, sum: s, count: n }) = self.series(id, labels) {
            c.copy_from_slice(counts);
            *s = sum;
            *n = count;
        }
    }

    /// Returns a counter's or gauge's value, or a histogram's observation count.
    pub fn value(&self, id: Id, labels: &[&str]) -> Option<f64> {
        let f = self.families.get(id.0)?;
        let i = f.series.binary_search_by(|(k, _)| by_labels(k, labels)).ok()?;
        match &f.series.get(i)?.1 {
            Series::Value(v) => Some(*v),
            Series::Histogram { count, .. } => Some(*count as f64),
        }
    }

    fn series(&mut self, id: Id, labels: &[&str]) -> Option<&mut Series> {
        let f = self.families.get_mut(id.0)?;
        if labels.len() != f.labels.len() {
            log::debug!("metric {}: wrong number of labels", f.name);
            return None;
        }
        // Found without allocating (recording runs on every head update).
        let i = match f.series.binary_search_by(|(k, _)| by_labels(k, labels)) {
            Ok(i) => i,
            Err(_) if f.series.len() >= MAX_SERIES => {
                log::debug!("metric {}: label set limit reached", f.name);
                return None;
            }
            Err(i) => {
                let key = labels.iter().map(|s| s.to_string()).collect();
                f.series.insert(i, (key, empty_series(f.kind)));
                i
            }
        };
        f.series.get_mut(i).map(|(_, s)| s)
    }

    /// Renders every family in the text exposition format, sorted by name.
    pub fn render(&self, out: &mut String) {
        let mut order: Vec<&Family> = self.families.iter().collect();
        crate::sort::sort_by(&mut order, |a, b| a.name < b.name);
        for f in order {
            if f.series.is_empty() {
                continue;
            }
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (values, s) in &f.series {
                match s {
                    Series::Value(v) => {
                        out.push_str(&f.name);
                        write_labels(out, f.labels, values, None);
                        let _ = writeln!(out, " {}", fmt_value(*v));
                    }
                    Series::Histogram { counts, sum, count } => {
                        let bounds = match f.kind {
                            Kind::Histogram(b) => b,
                            _ => &[],
                        };
                        let mut cumulative = 0u64;
                        for (b, c) in bounds.iter().zip(counts) {
                            cumulative += c;
                            let _ = write!(out, "{}_bucket", f.name);
                            write_labels(out, f.labels, values, Some(&fmt_value(*b)));
                            let _ = writeln!(out, " {cumulative}");
                        }
                        let _ = write!(out, "{}_bucket", f.name);
                        write_labels(out, f.labels, values, Some("+Inf"));
                        let _ = writeln!(out, " {count}");
                        let _ = write!(out, "{}_sum", f.name);
                        write_labels(out, f.labels, values, None);
                        let _ = writeln!(out, " {}", fmt_value(*sum));
                        let _ = write!(out, "{}_count", f.name);
                        write_labels(out, f.labels, values, None);
                        let _ = writeln!(out, " {count}");
                    }
                }
            }
        }
    }
}

/// Orders stored label values against looked-up ones, as `Vec<String>`'s order does.
fn by_labels(stored: &[String], labels: &[&str]) -> std::cmp::Ordering {
    stored.iter().map(String::as_str).cmp(labels.iter().copied())
}

fn empty_series(kind: Kind) -> Series {
    match kind {
        Kind::Histogram(b) => Series::Histogram { counts: vec![0; b.len()], sum: 0.0, count: 0 },
        _ => Series::Value(0.0),
    }
}

fn write_labels(out: &mut String, names: &[&str], values: &[String], le: Option<&str>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = names.iter().copied().zip(values.iter().map(String::as_str)).chain(le.map(|v| ("le", v)));
    for (name, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_set_from_counts_renders_as_observed() {
        const B: &[f64] = &[0.1, 1.0];
        let mut r = Registry::default();
        let (a, b) = (
            r.register("a", "A", Kind::Histogram(B), &["m"]),
            r.register("b", "A", Kind::Histogram(B), &["m"]),
        );
        for v in [0.05, 0.5, 0.7, 3.0] {
            r.observe(a, &["x"], v);
        }
        r.set_histogram(b, &["x"], &[1, 2], 4.25, 4);
        r.set_histogram(b, &["y"], &[1], 1.0, 1);
        let (mut ta, mut tb) = (String::new(), String::new());
        r.render(&mut ta);
        let ta = ta.split("# HELP b").next().unwrap_or_default().replace("a_", "b_").replace("a{", "b{");
        r.render(&mut tb);
        let tb = tb.split("# HELP b").nth(1).map(|t| format!("# HELP b{t}")).unwrap_or_default();
        assert_eq!(ta.replace("# HELP a", "# HELP b").replace("# TYPE a", "# TYPE b"), tb);
        assert!(tb.contains("b_bucket{m=\"x\",le=\"1\"} 3\n"), "{tb}");
        assert!(!tb.contains("m=\"y\""));
    }

    #[test]
    fn text_format_counters_gauges_and_escaping() {
        let mut r = Registry::default();
        let c = r.register("a_total", "A counter\\with \"quotes\"\nand lines", Kind::Counter, &[]);
        let g = r.register("b", "A gauge", Kind::Gauge, &["x", "y"]);
        let unused = r.register("c", "Unused labelled", Kind::Gauge, &["x"]);
        r.inc(c, &[]);
        r.add(c, &[], 2.5);
        r.set(g, &["q\"uote", "back\\slash\nnl"], -1.0);
        r.set(g, &["a", "b"], f64::INFINITY);
        r.set(unused, &["too", "many"], 1.0);
        let mut out = String::new();
        r.render(&mut out);
        assert_eq!(
            out,
            concat!(
                "# HELP a_total A counter\\\\with \"quotes\"\\nand lines\n",
                "# TYPE a_total counter\n",
                "a_total 3.5\n",
                "# HELP b A gauge\n",
                "# TYPE b gauge\n",
                "b{x=\"a\",y=\"b\"} +Inf\n",
                "b{x=\"q\\\"uote\",y=\"back\\\\slash\\nnl\"} -1\n",
            )
        );
        assert_eq!(r.value(c, &[]), Some(3.5));
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut r = Registry::default();
        let h = r.register("lat_seconds", "Latency", Kind::Histogram(&[0.1, 1.0]), &["m"]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            r.observe(h, &["x"], v);
        }
        let mut out = String::new();
        r.render(&mut out);
        assert_eq!(
            out,
            concat!(
                "# HELP lat_seconds Latency\n",
                "# TYPE lat_seconds histogram\n",
                "lat_seconds_bucket{m=\"x\",le=\"0.1\"} 2\n",
                "lat_seconds_bucket{m=\"x\",le=\"1\"} 3\n",
                "lat_seconds_bucket{m=\"x\",le=\"+Inf\"} 4\n",
                "lat_seconds_sum{m=\"x\"} 3.65\n",
                "lat_seconds_count{m=\"x\"} 4\n",
            )
        );
        let mut r = Registry::default();
        r.register("empty", "Unlabelled", Kind::Histogram(&[1.0]), &[]);
        let mut out = String::new();
        r.render(&mut out);
        assert!(out.contains("empty_bucket{le=\"+Inf\"} 0\nempty_sum 0\nempty_count 0\n"));
    }

    #[test]
    fn label_sets_are_capped() {
        let mut r = Registry::default();
        let c = r.register("c_total", "c", Kind::Counter, &["m"]);
        for i in 0..MAX_SERIES + 50 {
            r.inc(c, &[&i.to_string()]);
        }
        assert_eq!(r.families[0].series.len(), MAX_SERIES);
        r.inc(c, &["0"]);
        assert_eq!(r.value(c, &["0"]), Some(2.0));
    }
}

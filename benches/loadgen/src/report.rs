//! The closing table: one row per figure, ours next to the baseline, the
//! ratio, and the target when there is one.

use std::fmt::Write as _;

/// What a figure must reach.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// No target: the figure is context.
    None,
    /// `ours / baseline` must be at least this (throughputs).
    RatioAtLeast(f64),
    /// Ours must be at most this, in the row's unit (latency, memory).
    AtMost(f64),
}

/// One figure of the table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Which scenario (`(a) ping, 100 sockets`).
    pub(crate) scenario: String,
    /// What is measured, with its unit (`round trips/s`).
    pub(crate) metric: String,
    /// Our figure.
    pub(crate) ours: Option<f64>,
    /// The baseline's figure.
    pub(crate) baseline: Option<f64>,
    /// Decimals to print.
    pub(crate) decimals: usize,
    /// The target.
    pub(crate) target: Target,
}

impl Row {
    /// A row with no target.
    pub(crate) fn new(scenario: &str, metric: &str, ours: Option<f64>, baseline: Option<f64>, decimals: usize) -> Self {
        Self {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            ours,
            baseline,
            decimals,
            target: Target::None,
        }
    }

    /// Sets the target.
    #[must_use]
    pub(crate) fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    fn ratio(&self) -> Option<f64> {
        match (self.ours, self.baseline) {
            (Some(ours), Some(baseline)) if baseline > 0.0 => Some(ours / baseline),
            _ => None,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.target {
            Target::None => "",
            Target::RatioAtLeast(min) => match self.ratio() {
                Some(ratio) if ratio >= min => "yes",
                Some(_) => "**no**",
                None => "n/a",
            },
            Target::AtMost(max) => match self.ours {
                Some(ours) if ours <= max => "yes",
                Some(_) => "**no**",
                None => "n/a",
            },
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => String::new(),
            Target::RatioAtLeast(min) => format!("≥ {min}×"),
            Target::AtMost(max) => format!("≤ {max}"),
        }
    }
}

/// Formats a figure with thousands separators.
pub(crate) fn number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text.as_str(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| number(v, decimals))
}

/// Renders the rows as a markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | metric | ours | baseline | ours/baseline | target | met |\n");
    out.push_str("|---|---|---:|---:|---:|---|---|\n");
    for row in rows {
        let ratio = row.ratio().map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.metric,
            cell(row.ours, row.decimals),
            cell(row.baseline, row.decimals),
            ratio,
            row.target_text(),
            row.verdict(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(1_234_567.891, 1), "1,234,567.9");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(-1000.0, 0), "-1,000");
        assert_eq!(number(0.25, 2), "0.25");
    }

    #[test]
    fn verdicts_follow_targets() {
        let row = Row::new("s", "m", Some(90.0), Some(100.0), 0).target(Target::RatioAtLeast(0.8));
        assert_eq!(row.verdict(), "yes");
        let row = Row::new("s", "m", Some(70.0), Some(100.0), 0).target(Target::RatioAtLeast(0.8));
        assert_eq!(row.verdict(), "**no**");
        let row = Row::new("s", "m", Some(30.0), None, 0).target(Target::AtMost(25.0));
        assert_eq!(row.verdict(), "**no**");
        assert!(table(&[row]).contains("| s | m | 30 | — | — | ≤ 25 | **no** |"));
    }
}

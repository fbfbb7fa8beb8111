//! The console's two actions, as state the views show and effects the run
//! loop carries out: a producer run (a form for rate, count and bad ratio,
//! a confirmation, live progress, a stop key) and a purge (a dry run shown
//! first, then a confirmation before anything is deleted, then the result).

/// A form field: its label and text as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerForm {
    /// Rate (records/s, empty: as fast as possible), count, bad ratio.
    pub fields: [String; 3],
    pub focus: usize,
    pub error: Option<String>,
}

pub const FIELD_LABELS: [&str; 3] = [
    "rate (records/s, empty: as fast as it goes)",
    "count",
    "bad ratio (0 to 1)",
];

impl Default for ProducerForm {
    fn default() -> Self {
        Self {
            fields: ["100".into(), "1000".into(), "0".into()],
            focus: 0,
            error: None,
        }
    }
}

/// What a valid form asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProducerRequest {
    pub rate: Option<f64>,
    pub count: u64,
    pub bad_ratio: f64,
}

impl ProducerForm {
    /// The request, or the first field that is wrong and why.
    pub fn request(&self) -> Result<ProducerRequest, String> {
        let rate = match self.fields[0].trim() {
            "" => None,
            text => Some(
                text.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| format!("rate must be a positive number, not {text:?}"))?,
            ),
        };
        let count = self.fields[1]
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                format!(
                    "count must be a whole number above 0, not {:?}",
                    self.fields[1]
                )
            })?;
        let bad_ratio = self.fields[2]
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                format!(
                    "bad ratio must be between 0 and 1, not {:?}",
                    self.fields[2]
                )
            })?;
        Ok(ProducerRequest {
            rate,
            count,
            bad_ratio,
        })
    }
}

/// A window over the views, waiting for the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    ProducerForm(ProducerForm),
    ConfirmProducer(ProducerRequest),
    /// The dry run is under way.
    PurgePlanning,
    /// What a purge would remove (the dry run's report), waiting for y/n.
    ConfirmPurge(String),
    Purging,
    /// The purge's report, or why it failed.
    PurgeResult(String),
}

/// A producer run started from the console.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerProgress {
    pub request: ProducerRequest,
    pub delivered: u64,
    pub failed: u64,
    pub stopping: bool,
    /// Set when the run is over: its summary line.
    pub finished: Option<String>,
}

impl ProducerProgress {
    pub fn line(&self) -> String {
        let done = self.delivered + self.failed;
        let percent = done as f64 * 100.0 / self.request.count.max(1) as f64;
        match &self.finished {
            Some(summary) => format!("producer done: {summary}"),
            None => format!(
                "producer {done}/{} ({percent:.0}%){}{}",
                self.request.count,
                if self.failed > 0 {
                    format!(", {} failed", self.failed)
                } else {
                    String::new()
                },
                if self.stopping {
                    ", stopping…"
                } else {
                    " — s stops it"
                }
            ),
        }
    }
}

/// Work the run loop does for the console, off the screen's thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    StartProducer(ProducerRequest),
    StopProducer,
    PurgeDryRun,
    Purge,
    /// List the components with a folder under `log/`.
    ListLogs,
    /// Read the last lines of a component's newest log file.
    TailLog(String),
    /// List a lake stream's files on one date.
    ListLakeFiles(String, chrono::NaiveDate),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_names_its_wrong_field() {
        let mut form = ProducerForm::default();
        assert_eq!(
            form.request(),
            Ok(ProducerRequest {
                rate: Some(100.0),
                count: 1000,
                bad_ratio: 0.0
            })
        );
        form.fields[0] = String::new();
        assert_eq!(form.request().unwrap().rate, None);
        form.fields[1] = "ten".into();
        assert!(form.request().unwrap_err().starts_with("count"));
        form.fields[1] = "10".into();
        form.fields[2] = "1.5".into();
        assert!(form.request().unwrap_err().starts_with("bad ratio"));
    }
}

//! A small reader of the runtime's `GOTRACEBACK=crash` text, enough to
//! compare goroutines: ids, statuses, frames and creators.

#[derive(Debug, Default)]
pub struct PrintedGoroutine {
    pub goid: u64,
    /// The bracketed status without ", N minutes" and ", locked to thread".
    pub status: String,
    pub locked: bool,
    /// (function, file, line) in printed order.
    pub frames: Vec<(String, String, i64)>,
    pub created_by: Option<(String, Option<u64>)>,
    /// "goroutine running on other thread; stack unavailable".
    pub unavailable: bool,
}

/// Parses every `goroutine N ...:` block of `text`.
pub fn parse(text: &str) -> Vec<PrintedGoroutine> {
    let mut goroutines = Vec::new();
    let mut current: Option<PrintedGoroutine> = None;
    let mut pending_function: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("goroutine running on other thread") {
            if let Some(goroutine) = current.as_mut() {
                goroutine.unavailable = true;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("goroutine ") {
            if let Some(done) = current.take() {
                goroutines.push(done);
            }
            let Some((id, rest)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(goid) = id.parse() else { continue };
            let status = rest
                .rsplit_once('[')
                .map(|(_, s)| s.trim_end_matches("]:"))
                .unwrap_or("");
            let mut parts: Vec<&str> = status.split(", ").collect();
            let locked = parts.contains(&"locked to thread");
            parts.retain(|p| {
                *p != "locked to thread" && !p.ends_with(" minutes") && !p.ends_with(" minute")
            });
            current = Some(PrintedGoroutine {
                goid,
                status: parts.join(", "),
                locked,
                ..Default::default()
            });
            pending_function = None;
            continue;
        }
        let Some(goroutine) = current.as_mut() else {
            continue;
        };
        if line.is_empty() {
            goroutines.push(current.take().expect("current is set"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("created by ") {
            let (function, parent) = match rest.split_once(" in goroutine ") {
                Some((f, p)) => (f.to_owned(), p.trim().parse().ok()),
                None => (rest.trim().to_owned(), None),
            };
            goroutine.created_by = Some((function, parent));
            pending_function = Some(String::new());
        } else if let Some(location) = line.strip_prefix('\t') {
            let Some(function) = pending_function.take() else {
                continue;
            };
            if function.is_empty() {
                continue;
            }
            let location = location.split(' ').next().unwrap_or("");
            let Some((file, number)) = location.rsplit_once(':') else {
                continue;
            };
            goroutine
                .frames
                .push((function, file.to_owned(), number.parse().unwrap_or(-1)));
        } else if let Some(open) = line.rfind('(') {
            pending_function = Some(line[..open].to_owned());
        }
    }
    if let Some(done) = current {
        goroutines.push(done);
    }
    goroutines
}

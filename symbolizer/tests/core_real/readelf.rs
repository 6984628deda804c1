//! Parses what `eu-readelf -n` prints for a core, as an independent
//! reference for the reader.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// One NT_PRSTATUS as eu-readelf prints it: register and field values by
/// name (`pid`, `rip`, `rsp`, `fs.base`, ...).
#[derive(Debug, Default)]
pub struct Status {
    pub fields: HashMap<String, u64>,
}

impl Status {
    pub fn get(&self, name: &str) -> u64 {
        *self
            .fields
            .get(name)
            .unwrap_or_else(|| panic!("eu-readelf printed no {name}: {:?}", self.fields))
    }
}

/// One NT_FILE line.
#[derive(Debug, PartialEq, Eq)]
pub struct FileLine {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

#[derive(Debug, Default)]
pub struct Notes {
    pub statuses: Vec<Status>,
    pub files: Vec<FileLine>,
    pub auxv: HashMap<String, u64>,
}

fn number(token: &str) -> Option<u64> {
    let token = token.trim_end_matches(',');
    if let Some(hex) = token.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok();
    }
    token.parse::<i64>().ok().map(|v| v as u64)
}

pub fn notes(core: &Path) -> Notes {
    let output = Command::new("eu-readelf")
        .arg("-n")
        .arg(core)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "eu-readelf -n {} failed",
        core.display()
    );
    let text = String::from_utf8_lossy(&output.stdout);

    let mut notes = Notes::default();
    let mut section = "";
    for line in text.lines() {
        let trimmed = line.trim();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if words.len() >= 3
            && (words[0] == "CORE" || words[0] == "LINUX")
            && words[1].parse::<u64>().is_ok()
        {
            section = match words[2] {
                "PRSTATUS" => {
                    notes.statuses.push(Status::default());
                    "PRSTATUS"
                }
                "FILE" => "FILE",
                "AUXV" => "AUXV",
                _ => "",
            };
            continue;
        }
        match section {
            "PRSTATUS" => {
                let status = notes.statuses.last_mut().unwrap();
                for pair in words.windows(2) {
                    if let (Some(name), Some(value)) = (pair[0].strip_suffix(':'), number(pair[1]))
                    {
                        status.fields.insert(name.to_owned(), value);
                    }
                }
            }
            "AUXV" => {
                if let [name, value] = words.as_slice() {
                    if let (Some(name), Some(value)) = (name.strip_suffix(':'), number(value)) {
                        notes.auxv.insert(name.to_owned(), value);
                    }
                }
            }
            "FILE" => {
                // "00400000-00481000 00000000 528384    /path"
                let Some((range, rest)) = trimmed.split_once(' ') else {
                    continue;
                };
                let Some((start, end)) = range.split_once('-') else {
                    continue;
                };
                let mut rest = rest.trim_start().splitn(3, char::is_whitespace);
                let (Some(offset), Some(_size), Some(path)) =
                    (rest.next(), rest.next(), rest.next())
                else {
                    continue;
                };
                let (Ok(start), Ok(end), Ok(offset)) = (
                    u64::from_str_radix(start, 16),
                    u64::from_str_radix(end, 16),
                    u64::from_str_radix(offset, 16),
                ) else {
                    continue;
                };
                notes.files.push(FileLine {
                    start,
                    end,
                    offset,
                    path: path.trim().to_owned(),
                });
            }
            _ => {}
        }
    }
    notes
}

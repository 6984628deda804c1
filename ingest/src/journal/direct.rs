//! Runs a [`Query`] on journal files read directly with [`super::file`],
//! without journalctl: for hosts and containers that have
//! journal files but no journalctl, and to check one reader against the
//! other.
//!
//! The files are the ones journalctl would open for the same [`Journal`]:
//! the named files, the journal files of a directory and of its machine-ID
//! subdirectories, or this machine's journal under `/var/log/journal` and
//! `/run/log/journal` (every machine's with `merge`). Named files are taken
//! literally: journalctl's globs in `--file` are not expanded. Matches follow
//! journalctl's rules. Entries of files that share one sequence-number ID
//! are ordered by sequence number, as journalctl does; entries of unrelated
//! files by their realtime timestamp.
//!
//! A query with matches looks up, in each file's hash table of DATA
//! objects, the entries that have the value of one field of each
//! alternative, as journalctl does, then checks the rest of the matches on
//! those entries alone. Queries without matches walk every entry instead,
//! and so do files whose table uses the unkeyed hash of systemd before 246,
//! which this reader does not compute. For those, a first pass reads only
//! the ENTRY objects and keeps each entry's 32-byte position, sorted, once
//! per [`Journal`] value (see [`ScanCache`]). Either way the stream reads one
//! entry at a time, and only the fields the matches and the output name.
//!
//! Times are accepted only as `@SECONDS[.FRACTION]`. journalctl's other
//! time forms ("yesterday", "-1h", local dates) depend on its parser and the
//! local time zone, and are rejected with a message instead of guessed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::export::ExportOptions;
use super::file::{hex, EntryPosition, JournalFile, JournalFileError};
use super::journalctl::{is_valid_match, Journal, JournalError, Query};
use super::Entry;

/// Directories of journald's persistent and volatile journals.
const JOURNAL_ROOTS: &[&str] = &["/var/log/journal", "/run/log/journal"];
/// File holding this machine's ID, which names its journal directory.
const MACHINE_ID_FILE: &str = "/etc/machine-id";
/// Fields journalctl's export output always prints, whatever
/// `--output-fields` names.
const IMPLICIT_FIELDS: &[&str] = &[
    "__CURSOR",
    "__REALTIME_TIMESTAMP",
    "__MONOTONIC_TIMESTAMP",
    "_BOOT_ID",
];
/// Files read at most from one directory, so that a wrong `--directory`
/// cannot make the reader map an unbounded number of files.
const MAX_JOURNAL_FILES: usize = 4096;
/// `state` of a journal file that journald still writes.
const STATE_ONLINE: u8 = 1;

/// One matching entry: which file, where in it, and its place in the order.
#[derive(Clone, Copy, Debug)]
struct Location {
    file: usize,
    offset: u64,
    position: EntryPosition,
}

impl Location {
    /// Places the entry before, at or after a cursor.
    fn compare(&self, cursor: &CursorPlace, by_seqnum: bool) -> std::cmp::Ordering {
        if by_seqnum {
            self.position.seqnum.cmp(&cursor.seqnum)
        } else {
            self.position.realtime_usec.cmp(&cursor.realtime_usec)
        }
    }
}

/// Matches in journalctl's form: alternatives separated by `+`, each a set
/// of fields that must all match, each field with values of which one must
/// match.
#[derive(Debug, Default)]
struct Matches {
    alternatives: Vec<Vec<(String, Vec<Vec<u8>>)>>,
}

impl Matches {
    fn parse(terms: &[String]) -> Result<Matches, JournalError> {
        let mut alternatives: Vec<Vec<(String, Vec<Vec<u8>>)>> = vec![Vec::new()];
        for term in terms {
            if !is_valid_match(term) {
                return Err(JournalError::InvalidMatch(term.clone()));
            }
            if term == "+" {
                alternatives.push(Vec::new());
                continue;
            }
            let Some((name, value)) = term.split_once('=') else {
                return Err(JournalError::InvalidMatch(term.clone()));
            };
            let Some(current) = alternatives.last_mut() else {
                continue;
            };
            let value = value.as_bytes().to_vec();
            match current.iter_mut().find(|(known, _)| known == name) {
                Some((_, values)) => values.push(value),
                None => current.push((name.to_string(), vec![value])),
            }
        }
        // An empty alternative (no terms, or a trailing `+`) matches
        // nothing on its own; journalctl ignores it too.
        alternatives.retain(|fields| !fields.is_empty());
        Ok(Matches { alternatives })
    }

    fn is_empty(&self) -> bool {
        self.alternatives.is_empty()
    }

    /// Returns, for each alternative, the `NAME=value` payloads of each of
    /// its fields: an entry that matches the alternative has one payload of
    /// every field. `None` without matches.
    fn payloads_by_field(&self) -> Option<Vec<Vec<Vec<Vec<u8>>>>> {
        if self.is_empty() {
            return None;
        }
        let payloads = self
            .alternatives
            .iter()
            .map(|fields| {
                fields
                    .iter()
                    .map(|(name, values)| {
                        values
                            .iter()
                            .map(|value| {
                                let mut payload = Vec::with_capacity(name.len() + 1 + value.len());
                                payload.extend_from_slice(name.as_bytes());
                                payload.push(b'=');
                                payload.extend_from_slice(value);
                                payload
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Some(payloads)
    }

    fn names_field(&self, name: &str) -> bool {
        self.alternatives
            .iter()
            .any(|fields| fields.iter().any(|(known, _)| known == name))
    }

    fn accept(&self, entry: &Entry) -> bool {
        if self.is_empty() {
            return true;
        }
        self.alternatives.iter().any(|fields| {
            fields.iter().all(|(name, values)| {
                entry
                    .values(name)
                    .filter_map(|value| value.data())
                    .any(|data| values.iter().any(|wanted| wanted.as_slice() == data))
            })
        })
    }
}

/// Reads `@SECONDS[.FRACTION]` as microseconds since the epoch.
fn parse_time(option: &'static str, value: &str) -> Result<u64, JournalError> {
    let unsupported = || JournalError::UnsupportedByDirectReader {
        option,
        value: value.to_string(),
    };
    let digits = value.strip_prefix('@').ok_or_else(unsupported)?;
    let (seconds, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if seconds.is_empty()
        || !seconds.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(unsupported());
    }
    let seconds: u64 = seconds.parse().map_err(|_| unsupported())?;
    // Microseconds: the first six fractional digits, padded with zeros.
    let micros: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(6)
        .collect();
    let micros: u64 = micros.parse().map_err(|_| unsupported())?;
    seconds
        .checked_mul(1_000_000)
        .and_then(|usec| usec.checked_add(micros))
        .ok_or_else(unsupported)
}

/// The parts of a journalctl cursor that place it in the order.
#[derive(Debug, PartialEq, Eq)]
struct CursorPlace {
    seqnum_id: String,
    seqnum: u64,
    realtime_usec: u64,
}

fn parse_cursor(option: &'static str, cursor: &str) -> Result<CursorPlace, JournalError> {
    let invalid = || JournalError::InvalidCursor {
        option,
        cursor: cursor.to_string(),
    };
    let part = |key: &str| {
        cursor
            .split(';')
            .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
    };
    let hex = |key: &str| part(key).and_then(|text| u64::from_str_radix(text, 16).ok());
    Ok(CursorPlace {
        seqnum_id: part("s").ok_or_else(invalid)?.to_string(),
        seqnum: hex("i").ok_or_else(invalid)?,
        realtime_usec: hex("t").ok_or_else(invalid)?,
    })
}

/// Returns the journal files of a directory and of its subdirectories named
/// by a machine ID, sorted by name.
fn files_in(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::debug!(target: "gocrash::journal", dir = %dir.display(), "no journal directory");
        return;
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_journal_name(&name) {
            found.push(path);
        } else if is_machine_id(&name) && path.is_dir() {
            if let Ok(inner) = std::fs::read_dir(&path) {
                found.extend(
                    inner
                        .flatten()
                        .filter(|entry| is_journal_name(&entry.file_name().to_string_lossy()))
                        .map(|entry| entry.path())
                        .take(MAX_JOURNAL_FILES),
                );
            }
        }
        if found.len() >= MAX_JOURNAL_FILES {
            tracing::warn!(target: "gocrash::journal", dir = %dir.display(), limit = MAX_JOURNAL_FILES, "too many journal files; only the first ones found are read");
            found.truncate(MAX_JOURNAL_FILES);
            break;
        }
    }
    found.sort();
    files.extend(found);
}

fn is_journal_name(name: &str) -> bool {
    name.ends_with(".journal") || name.ends_with(".journal~")
}

fn is_machine_id(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Returns the files journalctl would open for `journal`.
fn journal_files(journal: &Journal) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if !journal.files.is_empty() {
        files.extend(journal.files.iter().cloned());
    } else if let Some(dir) = &journal.directory {
        files_in(dir, &mut files);
    } else if journal.merge {
        for root in JOURNAL_ROOTS {
            files_in(Path::new(root), &mut files);
        }
    } else {
        let machine_id = std::fs::read_to_string(MACHINE_ID_FILE).unwrap_or_default();
        let machine_id = machine_id.trim();
        for root in JOURNAL_ROOTS {
            files_in(&Path::new(root).join(machine_id), &mut files);
        }
    }
    files
}

/// The first entry of each journal file journalctl would open for a
/// journal, by sequence-number ID and sequence number.
#[derive(Debug, Default)]
pub struct FileHeads {
    heads: std::collections::HashSet<(String, u64)>,
}

impl FileHeads {
    /// Reads the header of each file; files that cannot be read are logged
    /// and left out.
    pub fn read(journal: &Journal) -> FileHeads {
        let mut heads = std::collections::HashSet::new();
        for path in journal_files(journal) {
            match JournalFile::read_header(&path) {
                Ok(header) if header.head_entry_seqnum != 0 => {
                    heads.insert((hex(&header.seqnum_id), header.head_entry_seqnum));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(target: "gocrash::journal", %error, "cannot read a journal file's header");
                }
            }
        }
        FileHeads { heads }
    }

    /// Builds the set from `(seqnum_id in hex, head sequence number)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, u64)>) -> FileHeads {
        FileHeads {
            heads: pairs.into_iter().collect(),
        }
    }

    /// Reports whether the entry with this sequence number is the first of
    /// a file. `seqnum_id` is in hex, as cursors write it.
    pub fn contains(&self, seqnum_id: &str, seqnum: u64) -> bool {
        self.heads.contains(&(seqnum_id.to_owned(), seqnum))
    }
}

/// Opens the files, and logs and leaves out those that are not journals.
/// A file the caller named (`named`) that cannot be opened fails the read,
/// as with journalctl --file. One found in a directory is left out, because
/// a vacuum may have removed it since, or it is a dangling link.
fn open_files(paths: &[PathBuf], named: bool) -> Result<Vec<JournalFile>, JournalError> {
    let mut files = Vec::new();
    for path in paths {
        match JournalFile::open(path) {
            Ok(file) => files.push(file),
            Err(error @ JournalFileError::Open { .. }) if named => {
                return Err(JournalError::File(error))
            }
            Err(error) => {
                tracing::warn!(target: "gocrash::journal", %error, "left out a journal file");
            }
        }
    }
    Ok(files)
}

/// A journal's files, opened, and the order of their entries.
struct Scan {
    files: Vec<JournalFile>,
    /// Every file has the same sequence-number ID, so entries are in
    /// sequence-number order, and a cursor is placed by sequence number.
    single_sequence: bool,
    seqnum_id: Option<String>,
    /// The position of every entry, made by the first query that cannot
    /// use the files' hash tables.
    all: OnceLock<AllEntries>,
}

/// The position of every entry of a journal's files, in order.
struct AllEntries {
    locations: Vec<Location>,
    /// The realtime timestamps of `locations` never decrease, so a time
    /// range is found by binary search.
    sorted_by_time: bool,
}

impl Scan {
    fn read(journal: &Journal) -> Result<Scan, JournalError> {
        let paths = journal_files(journal);
        let files = open_files(&paths, !journal.files.is_empty())?;
        tracing::debug!(target: "gocrash::journal", files = files.len(), "reading journal files directly");
        let single_sequence = files
            .windows(2)
            .all(|pair| pair[0].header().seqnum_id == pair[1].header().seqnum_id);
        let seqnum_id = files.first().map(|file| hex(&file.header().seqnum_id));
        Ok(Scan {
            files,
            single_sequence,
            seqnum_id,
            all: OnceLock::new(),
        })
    }

    /// Puts locations in the order queries return entries.
    fn sort(&self, locations: &mut Vec<Location>) {
        if self.single_sequence {
            // The same entry can sit in an archived file and in the file
            // that replaced it after a crash of journald.
            locations.sort_by_key(|l| l.position.seqnum);
            locations.dedup_by_key(|l| l.position.seqnum);
        } else {
            locations.sort_by_key(|l| (l.position.realtime_usec, l.position.seqnum));
        }
    }

    /// Returns every entry's position, walking the files the first time.
    fn all(&self) -> &AllEntries {
        self.all.get_or_init(|| {
            let mut locations = Vec::new();
            for (index, file) in self.files.iter().enumerate() {
                find_candidates(index, file, &mut locations);
            }
            self.sort(&mut locations);
            let sorted_by_time = locations
                .windows(2)
                .all(|pair| pair[0].position.realtime_usec <= pair[1].position.realtime_usec);
            tracing::debug!(target: "gocrash::journal", entries = locations.len(), sorted_by_time, "indexed the journal's entries");
            AllEntries {
                locations,
                sorted_by_time,
            }
        })
    }

    /// Returns the entries that may match `matches`, looked up in the files'
    /// hash tables (see [`Scan::with_payloads`]). Returns `None` without
    /// matches or when a table cannot be used.
    fn with_matches(&self, matches: &Matches) -> Option<Vec<Location>> {
        matches
            .payloads_by_field()
            .and_then(|alternatives| self.with_payloads(&alternatives))
    }

    /// Returns the entries that may match, looked up in the files' hash
    /// tables, in order: for each alternative (see
    /// [`Matches::payloads_by_field`]), the entries of the field that the
    /// fewest entries have. `None` when a file's table cannot be used, and
    /// every entry must be walked instead.
    fn with_payloads(&self, alternatives: &[Vec<Vec<Vec<u8>>>]) -> Option<Vec<Location>> {
        let mut locations = Vec::new();
        let mut found_twice = false;
        for (index, file) in self.files.iter().enumerate() {
            let mut lookups = 0usize;
            for fields in alternatives {
                for payload in fewest_entries(file, fields)? {
                    lookups += 1;
                    found_twice |= lookups > 1;
                    let offsets = match file.entries_with(payload) {
                        Ok(Some(offsets)) => offsets,
                        Ok(None) => return None,
                        Err(error) => {
                            tracing::debug!(target: "gocrash::journal", %error, "cannot use a file's hash table, so every entry is walked");
                            return None;
                        }
                    };
                    for offset in offsets {
                        let position = file.entry_position(offset).ok()?;
                        locations.push(Location {
                            file: index,
                            offset,
                            position,
                        });
                    }
                }
            }
        }
        if found_twice {
            // An entry with several of the payloads is found once for each.
            locations.sort_by_key(|l| (l.file, l.offset));
            locations.dedup_by_key(|l| (l.file, l.offset));
        }
        self.sort(&mut locations);
        Some(locations)
    }
}

/// Returns the payloads of the field of `fields` that the fewest entries of
/// `file` have, by the counts of its DATA objects. `None` when the file's
/// hash table cannot be used.
fn fewest_entries<'p>(file: &JournalFile, fields: &'p [Vec<Vec<u8>>]) -> Option<&'p [Vec<u8>]> {
    let mut best: Option<(u64, &[Vec<u8>])> = None;
    for payloads in fields {
        let mut count = 0u64;
        for payload in payloads {
            match file.count_entries_with(payload) {
                Ok(Some(entries)) => count = count.saturating_add(entries),
                Ok(None) => return None,
                Err(error) => {
                    tracing::debug!(target: "gocrash::journal", %error, "cannot use a file's hash table, so every entry is walked");
                    return None;
                }
            }
        }
        if best.is_none_or(|(fewest, _)| count < fewest) {
            best = Some((count, payloads));
        }
    }
    best.map(|(_, payloads)| payloads)
}

impl AllEntries {
    /// Returns the bounds in `locations` of the entries received from
    /// `since` to `until`, both included, when the times are in order.
    /// Otherwise it returns every entry, and the stream checks the times.
    fn range(&self, since: Option<u64>, until: Option<u64>) -> (usize, usize) {
        if !self.sorted_by_time {
            return (0, self.locations.len());
        }
        let start = since.map_or(0, |since| {
            self.locations
                .partition_point(|l| l.position.realtime_usec < since)
        });
        let end = until.map_or(self.locations.len(), |until| {
            self.locations
                .partition_point(|l| l.position.realtime_usec <= until)
        });
        (start, end.max(start))
    }
}

/// The [`Scan`] of a [`Journal`], made by its first direct query and
/// shared by the later ones, also across threads and clones.
// NOTE: the files are those the first query found, mapped at their length
// then. A file journald creates later is not read, and neither are entries
// written past a file's mapped end, or after the first walk over every entry.
#[derive(Clone, Default)]
pub struct ScanCache(Arc<Mutex<Option<Arc<Scan>>>>);

impl std::fmt::Debug for ScanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanCache")
    }
}

impl ScanCache {
    /// Returns the scan, reading the journal files the first time. Other
    /// queries wait for that first read rather than repeat it.
    fn get(&self, journal: &Journal) -> Result<Arc<Scan>, JournalError> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(scan) = slot.as_ref() {
            return Ok(Arc::clone(scan));
        }
        let scan = Arc::new(Scan::read(journal)?);
        *slot = Some(Arc::clone(&scan));
        Ok(scan)
    }
}

/// Entries read from journal files, one at a time.
pub struct DirectStream {
    scan: Arc<Scan>,
    /// The entries found in the files' hash tables for the matches, or
    /// `None` for every entry of the scan.
    found: Option<Vec<Location>>,
    /// The entries not returned yet: `next..end` of `found` or of every
    /// entry, of which the time range and the cursors still select only
    /// some.
    next: usize,
    end: usize,
    /// The entries are returned from the newest.
    reverse: bool,
    /// Entries chosen in advance (the newest `lines`), returned instead of
    /// the range.
    chosen: Option<VecDeque<Location>>,
    /// The time range, checked entry by entry when the scan's times are not
    /// in order.
    since: Option<u64>,
    until: Option<u64>,
    /// `--after-cursor` and `--cursor`, each with whether it is placed by
    /// sequence number.
    after_cursor: Option<(CursorPlace, bool)>,
    cursor: Option<(CursorPlace, bool)>,
    matches: Matches,
    options: ExportOptions,
    output_fields: Vec<String>,
}

impl std::fmt::Debug for DirectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectStream")
            .field("files", &self.scan.files.len())
            .field("entries_left", &self.end.saturating_sub(self.next))
            .finish()
    }
}

impl DirectStream {
    /// Finds the entries `query` selects in `journal`'s files.
    pub fn open(
        journal: &Journal,
        query: &Query,
        options: ExportOptions,
    ) -> Result<DirectStream, JournalError> {
        let matches = Matches::parse(&query.matches)?;
        let scan = journal.scan.get(journal)?;
        let found = scan.with_matches(&matches);
        DirectStream::build(query, options, scan, matches, found)
    }

    /// Finds the entries `query` selects as [`DirectStream::open`] does,
    /// when the files' hash tables can find them: the query has matches,
    /// and every file has a keyed hash table. Returns `None` otherwise,
    /// without walking the entries.
    pub fn open_indexed(
        journal: &Journal,
        query: &Query,
        options: ExportOptions,
    ) -> Result<Option<DirectStream>, JournalError> {
        let matches = Matches::parse(&query.matches)?;
        let scan = journal.scan.get(journal)?;
        let Some(found) = scan.with_matches(&matches) else {
            return Ok(None);
        };
        DirectStream::build(query, options, scan, matches, Some(found)).map(Some)
    }

    /// Makes the stream of the entries `found` in the hash tables, or of
    /// every entry of the scan when `None`.
    fn build(
        query: &Query,
        options: ExportOptions,
        scan: Arc<Scan>,
        matches: Matches,
        found: Option<Vec<Location>>,
    ) -> Result<DirectStream, JournalError> {
        let since = query
            .since
            .as_deref()
            .map(|value| parse_time("--since", value))
            .transpose()?;
        let until = query
            .until
            .as_deref()
            .map(|value| parse_time("--until", value))
            .transpose()?;
        let cursor = query
            .cursor
            .as_deref()
            .map(|cursor| parse_cursor("--cursor", cursor))
            .transpose()?;
        let after_cursor = query
            .after_cursor
            .as_deref()
            .map(|cursor| parse_cursor("--after-cursor", cursor))
            .transpose()?;

        let (next, end, checks_time) = match &found {
            Some(found) => (0, found.len(), true),
            None => {
                let all = scan.all();
                let (next, end) = all.range(since, until);
                (next, end, !all.sorted_by_time)
            }
        };
        // A cursor is placed by its sequence number when it comes from the
        // files' one sequence, else by its time.
        let by_seqnum = |cursor: &CursorPlace| {
            scan.single_sequence && scan.seqnum_id.as_deref() == Some(cursor.seqnum_id.as_str())
        };
        let after_cursor = after_cursor.map(|c| {
            let by_seqnum = by_seqnum(&c);
            (c, by_seqnum)
        });
        let cursor = cursor.map(|c| {
            let by_seqnum = by_seqnum(&c);
            (c, by_seqnum)
        });
        let mut stream = DirectStream {
            scan,
            found,
            next,
            end,
            reverse: query.reverse,
            chosen: None,
            since: since.filter(|_| checks_time),
            until: until.filter(|_| checks_time),
            after_cursor,
            cursor,
            matches,
            options,
            output_fields: query.output_fields.clone(),
        };
        if let Some(lines) = query.lines {
            stream.keep_newest(lines)?;
        }
        Ok(stream)
    }

    /// Reports whether the time range and the cursors select an entry.
    fn selects(&self, location: &Location) -> bool {
        let time = location.position.realtime_usec;
        self.since.is_none_or(|since| time >= since)
            && self.until.is_none_or(|until| time <= until)
            && self
                .after_cursor
                .as_ref()
                .is_none_or(|(cursor, by_seqnum)| location.compare(cursor, *by_seqnum).is_gt())
            && self.cursor.as_ref().is_none_or(|(cursor, by_seqnum)| {
                let order = location.compare(cursor, *by_seqnum);
                if self.reverse {
                    order.is_le()
                } else {
                    order.is_ge()
                }
            })
    }

    /// Returns the entry at `index` of the entries the stream walks.
    fn location(&self, index: usize) -> Option<Location> {
        match &self.found {
            Some(found) => found.get(index).copied(),
            None => self.scan.all().locations.get(index).copied(),
        }
    }

    /// Takes the oldest entry left that the time range and cursors select.
    fn pop_oldest(&mut self) -> Option<Location> {
        while self.next < self.end {
            let location = self.location(self.next)?;
            self.next += 1;
            if self.selects(&location) {
                return Some(location);
            }
        }
        None
    }

    /// Takes the newest entry left that the time range and cursors select.
    fn pop_newest(&mut self) -> Option<Location> {
        while self.next < self.end {
            self.end -= 1;
            let location = self.location(self.end)?;
            if self.selects(&location) {
                return Some(location);
            }
        }
        None
    }

    /// Takes the next entry to return, before the matches.
    fn pop(&mut self) -> Option<Location> {
        match (&mut self.chosen, self.reverse) {
            (Some(chosen), _) => chosen.pop_front(),
            (None, true) => self.pop_newest(),
            (None, false) => self.pop_oldest(),
        }
    }

    /// Keeps the newest `lines` matching entries, found from the end.
    fn keep_newest(&mut self, lines: usize) -> Result<(), JournalError> {
        let mut kept = VecDeque::new();
        while kept.len() < lines {
            let Some(location) = self.pop_newest() else {
                break;
            };
            if self.accepts(&location)? {
                if self.reverse {
                    kept.push_back(location);
                } else {
                    kept.push_front(location);
                }
            }
        }
        self.chosen = Some(kept);
        // The kept entries are known to match.
        self.matches = Matches::default();
        Ok(())
    }

    /// Reports whether the entry at a location passes the matches, reading
    /// only the fields they name.
    fn accepts(&self, location: &Location) -> Result<bool, JournalError> {
        if self.matches.is_empty() {
            return Ok(true);
        }
        let Some(file) = self.scan.files.get(location.file) else {
            return Ok(false);
        };
        let named = |name: &str| self.matches.names_field(name);
        let entry = file
            .read_entry_fields(location.offset, &self.options, &named)
            .map_err(JournalError::File)?;
        Ok(self.matches.accept(&entry))
    }

    /// Returns the next entry, or `None` after the last.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, JournalError> {
        let location = loop {
            let Some(location) = self.pop() else {
                return Ok(None);
            };
            if self.accepts(&location)? {
                break location;
            }
        };
        let Some(file) = self.scan.files.get(location.file) else {
            return Ok(None);
        };
        let fields = &self.output_fields;
        let wanted = |name: &str| {
            fields.is_empty()
                || IMPLICIT_FIELDS.contains(&name)
                || fields.iter().any(|field| field == name)
        };
        let entry = file
            .read_entry_fields(location.offset, &self.options, &wanted)
            .map_err(JournalError::File)?;
        Ok(Some(entry))
    }

    /// Describes the read for messages.
    pub fn describe(&self) -> String {
        format!("direct read of {} journal files", self.scan.files.len())
    }
}

/// Adds the locations of the entries of one file. Only ENTRY objects are
/// read here. The matches are applied as the stream is read, so that a
/// caller reading the newest entry or a few stops early.
fn find_candidates(index: usize, file: &JournalFile, locations: &mut Vec<Location>) {
    for offset in file.entry_offsets() {
        let result = offset.and_then(|offset| {
            let position = file.entry_position(offset)?;
            Ok(Location {
                file: index,
                offset,
                position,
            })
        });
        match result {
            Ok(location) => locations.push(location),
            // journald appends to an online file while it is read, so its
            // last entries may be half written; journalctl stops there too.
            Err(error) if file.header().state == STATE_ONLINE => {
                tracing::debug!(target: "gocrash::journal", %error, "stopped at the end of an online journal file");
                break;
            }
            // The entries before the damage are still read, as journalctl
            // reads a damaged file up to the damage.
            Err(error) => {
                tracing::warn!(target: "gocrash::journal", %error, "left out the rest of a damaged journal file");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Field, FieldValue};

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            fields: fields
                .iter()
                .map(|(name, value)| Field {
                    name: name.to_string(),
                    value: FieldValue::Data(value.as_bytes().to_vec()),
                })
                .collect(),
            offset: 0,
        }
    }

    fn matches(terms: &[&str]) -> Matches {
        let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
        Matches::parse(&terms).unwrap()
    }

    #[test]
    fn same_field_is_or_other_field_is_and() {
        let m = matches(&["_PID=1", "_PID=2", "_COMM=app"]);
        assert!(m.accept(&entry(&[("_PID", "2"), ("_COMM", "app")])));
        assert!(!m.accept(&entry(&[("_PID", "3"), ("_COMM", "app")])));
        assert!(!m.accept(&entry(&[("_PID", "1")])));
    }

    #[test]
    fn plus_separates_alternatives() {
        let m = matches(&["_PID=1", "+", "_COMM=app"]);
        assert!(m.accept(&entry(&[("_PID", "1")])));
        assert!(m.accept(&entry(&[("_COMM", "app")])));
        assert!(!m.accept(&entry(&[("_PID", "2"), ("_COMM", "other")])));
    }

    #[test]
    fn repeated_field_matches_any_value() {
        let m = matches(&["TAG=b"]);
        assert!(m.accept(&entry(&[("TAG", "a"), ("TAG", "b")])));
    }

    #[test]
    fn no_matches_accept_everything() {
        assert!(matches(&[]).accept(&entry(&[("A", "1")])));
        assert!(matches(&["+"]).is_empty());
    }

    #[test]
    fn invalid_match_is_rejected() {
        let terms = vec!["pid=1".to_string()];
        assert!(matches!(
            Matches::parse(&terms),
            Err(JournalError::InvalidMatch(_))
        ));
    }

    #[test]
    fn times_at_seconds_are_read() {
        assert_eq!(
            parse_time("--since", "@1714557600").unwrap(),
            1_714_557_600_000_000
        );
        assert_eq!(parse_time("--since", "@1.5").unwrap(), 1_500_000);
        assert_eq!(parse_time("--since", "@0.000001").unwrap(), 1);
        assert_eq!(parse_time("--since", "@2.1234567").unwrap(), 2_123_456);
    }

    #[test]
    fn other_time_forms_are_rejected() {
        for value in [
            "yesterday",
            "-1h",
            "2024-05-01 10:00",
            "@",
            "@1x",
            "@18446744073709552",
        ] {
            let error = parse_time("--until", value).unwrap_err();
            assert!(
                matches!(
                    error,
                    JournalError::UnsupportedByDirectReader {
                        option: "--until",
                        ..
                    }
                ),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn cursor_parts_are_read() {
        let place = parse_cursor(
            "--cursor",
            "s=94eb673ec1fe40a4b4645d1e0194e6c0;i=780;b=5c2e;m=6ebc19c2;t=661d538a7a89b;x=a73b",
        )
        .unwrap();
        assert_eq!(place.seqnum_id, "94eb673ec1fe40a4b4645d1e0194e6c0");
        assert_eq!(place.seqnum, 0x780);
        assert_eq!(place.realtime_usec, 0x661d538a7a89b);
        assert!(matches!(
            parse_cursor("--cursor", "s=abc;i=zz"),
            Err(JournalError::InvalidCursor { .. })
        ));
    }

    #[test]
    fn machine_ids_are_recognised() {
        assert!(is_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4"));
        assert!(!is_machine_id("remote"));
        assert!(!is_machine_id("3d1219c7c4c5404aaa1f6d2a48adfdaz"));
    }

    /// Creates a directory holding a FIFO, a dangling link, a subdirectory
    /// and a text file, each named like a journal file, and a file of
    /// another name.
    fn directory_of_impostors() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(
            dir.path()
                .join("fifo.journal")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("vacuumed.journal"))
            .unwrap();
        std::fs::create_dir(dir.path().join("directory.journal")).unwrap();
        std::fs::write(dir.path().join("text.journal"), "not a journal").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not listed").unwrap();
        dir
    }

    #[test]
    fn impostors_in_a_directory_are_left_out() {
        let dir = directory_of_impostors();
        let journal = Journal {
            directory: Some(dir.path().to_path_buf()),
            ..Journal::default()
        };
        let paths = journal_files(&journal);
        assert_eq!(paths.len(), 4, "{paths:?}");
        // Neither reading a header nor opening may block on the FIFO.
        assert!(FileHeads::read(&journal).heads.is_empty());
        assert!(open_files(&paths, false).unwrap().is_empty());
        // A named file that cannot be opened is an error, as with --file.
        let dangling = [dir.path().join("vacuumed.journal")];
        assert!(matches!(
            open_files(&dangling, true),
            Err(JournalError::File(JournalFileError::Open { .. }))
        ));
    }

    #[test]
    fn directory_listing_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..MAX_JOURNAL_FILES + 3 {
            std::fs::write(dir.path().join(format!("{index}.journal")), "").unwrap();
        }
        for index in 0..10 {
            std::fs::write(dir.path().join(format!("{index}.txt")), "").unwrap();
        }
        let mut files = Vec::new();
        files_in(dir.path(), &mut files);
        assert_eq!(files.len(), MAX_JOURNAL_FILES);
        assert!(files
            .iter()
            .all(|path| path.extension() == Some("journal".as_ref())));
    }
}

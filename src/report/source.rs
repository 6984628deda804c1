//! Source lines around a frame: finding the file a binary names on this
//! machine, and cutting the lines around the frame's line.
//!
//! A binary records each file as the compiler saw it: an absolute path, or
//! with `-trimpath` a module path (`example.com/mod/pkg/file.go`) or a
//! path inside GOROOT (`runtime/proc.go`). `--source-root` maps those to
//! directories here. `MODULE=DIR` maps one module path. A plain `DIR` is
//! the main module's root, and it is also searched for the file's trailing
//! path components, so a tree moved to another directory is found too.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::model::SourceSnippet;

/// Lines shown before and after the frame's line.
pub const CONTEXT_LINES: i64 = 3;
/// Larger files are not read: no Go source file comes near this size, and
/// a file that does is not the one the binary names.
const MAX_SOURCE_BYTES: u64 = 8 << 20;
/// The maximum characters of a source line shown. Longer lines are cut, so
/// a minified or generated file cannot swell the report.
const MAX_LINE_CHARS: usize = 400;
/// Trailing path components tried under a plain `--source-root DIR`, so a
/// deep path costs a bounded number of lookups.
const MAX_SUFFIX_COMPONENTS: usize = 12;

/// One `--source-root` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Root {
    /// `MODULE=DIR`, or a plain `DIR` for the main module.
    Module { prefix: String, dir: PathBuf },
    /// A plain `DIR`, searched for the file's trailing components.
    Directory(PathBuf),
}

/// The `--source-root` arguments, and the files read so far.
#[derive(Debug, Default)]
pub struct SourceFinder {
    roots: Vec<Root>,
    cache: HashMap<PathBuf, Option<Vec<String>>>,
}

impl SourceFinder {
    /// Reads the `--source-root` arguments. A plain `DIR` maps the main
    /// module's path, when the build information names it.
    pub fn new(arguments: &[String], main_module: Option<&str>) -> SourceFinder {
        let mut roots = Vec::new();
        for argument in arguments {
            match argument.split_once('=') {
                Some((prefix, dir)) if !prefix.is_empty() && !dir.is_empty() => {
                    roots.push(Root::Module {
                        prefix: prefix.trim_end_matches('/').to_owned(),
                        dir: PathBuf::from(dir),
                    });
                }
                _ => {
                    if let Some(module) = main_module {
                        roots.push(Root::Module {
                            prefix: module.to_owned(),
                            dir: PathBuf::from(argument),
                        });
                    }
                    roots.push(Root::Directory(PathBuf::from(argument)));
                }
            }
        }
        SourceFinder {
            roots,
            cache: HashMap::new(),
        }
    }

    /// Returns the lines around `line` of `file`, or every path tried.
    pub fn snippet(&mut self, file: &str, line: i64) -> SourceSnippet {
        let mut tried = Vec::new();
        for candidate in self.candidates(file) {
            tried.push(candidate.display().to_string());
            if let Some(lines) = self.read(&candidate) {
                return cut(&candidate, lines, line);
            }
        }
        // cgo writes these files into the build's temporary directory,
        // which the go command removes, so no source root has them.
        let name = Path::new(file).file_name().and_then(|name| name.to_str());
        if name.is_some_and(|name| name.starts_with("_cgo_")) {
            tried.push(format!(
                "{file} (written by cgo during the build and removed after it, so no --source-root has it)"
            ));
        }
        SourceSnippet::NotFound { tried }
    }

    /// Lists the paths `file` may be at, the binary's own path first.
    fn candidates(&self, file: &str) -> Vec<PathBuf> {
        let mut candidates = Vec::new();
        let path = Path::new(file);
        if path.is_absolute() {
            candidates.push(path.to_path_buf());
        }
        for root in &self.roots {
            match root {
                Root::Module { prefix, dir } => {
                    if let Some(rest) = file.strip_prefix(prefix.as_str()) {
                        if let Some(rest) = rest.strip_prefix('/') {
                            candidates.push(dir.join(rest));
                        }
                    }
                }
                Root::Directory(dir) => {
                    let parts: Vec<&std::ffi::OsStr> = path
                        .components()
                        .filter_map(|c| match c {
                            Component::Normal(part) => Some(part),
                            _ => None,
                        })
                        .collect();
                    let longest = parts.len().min(MAX_SUFFIX_COMPONENTS);
                    for count in (1..=longest).rev() {
                        let start = parts.len() - count;
                        let mut candidate = dir.clone();
                        candidate.extend(&parts[start..]);
                        candidates.push(candidate);
                    }
                }
            }
        }
        // A root may rebuild the file's own path; each path is tried once.
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|candidate| seen.insert(candidate.clone()));
        candidates
    }

    /// Reads a file's lines once, and remembers a failure as `None`.
    fn read(&mut self, path: &Path) -> Option<&Vec<String>> {
        self.cache
            .entry(path.to_path_buf())
            .or_insert_with(|| read_lines(path))
            .as_ref()
    }
}

fn read_lines(path: &Path) -> Option<Vec<String>> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX_SOURCE_BYTES {
        tracing::debug!(target: "gocrash::report", path = %path.display(), size = metadata.len(), "not a source file of a readable size");
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::debug!(target: "gocrash::report", path = %path.display(), %error, "cannot read the source file");
            return None;
        }
    };
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| {
                if line.chars().count() > MAX_LINE_CHARS {
                    let kept: String = line.chars().take(MAX_LINE_CHARS).collect();
                    format!("{kept}…")
                } else {
                    line.to_owned()
                }
            })
            .collect(),
    )
}

/// Cuts the lines around `line` (1-based). A line past the file's end
/// means the file is not the one the binary was built from.
fn cut(path: &Path, lines: &[String], line: i64) -> SourceSnippet {
    let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    if line < 1 || line > count {
        return SourceSnippet::NotFound {
            tried: vec![format!(
                "{} (has {count} lines, not line {line}: another version of the file?)",
                path.display()
            )],
        };
    }
    let first = (line - CONTEXT_LINES).max(1);
    let last = (line + CONTEXT_LINES).min(count);
    // Both bounds lie in 1..=count, so the indexes are in range.
    let shown = lines
        .get((first - 1) as usize..last as usize)
        .unwrap_or_default()
        .to_vec();
    SourceSnippet::Found {
        path: path.display().to_string(),
        first_line: first,
        marked_line: line,
        lines: shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_source(dir: &Path, relative: &str, lines: usize) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = (1..=lines).map(|n| format!("line {n}\n")).collect();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn snippet_marks_line_with_context() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "main.go", 20);
        let file = dir.path().join("main.go");
        let mut finder = SourceFinder::new(&[], None);
        let SourceSnippet::Found {
            first_line,
            marked_line,
            lines,
            ..
        } = finder.snippet(file.to_str().unwrap(), 10)
        else {
            panic!("main.go not found");
        };
        assert_eq!(first_line, 7);
        assert_eq!(marked_line, 10);
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[3], "line 10");
    }

    #[test]
    fn snippet_stops_at_file_edges() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "a.go", 4);
        let file = dir.path().join("a.go");
        let mut finder = SourceFinder::new(&[], None);
        let SourceSnippet::Found {
            first_line, lines, ..
        } = finder.snippet(file.to_str().unwrap(), 1)
        else {
            panic!("a.go not found");
        };
        assert_eq!(first_line, 1);
        assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"]);
    }

    #[test]
    fn trimpath_module_maps_to_root() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "pkg/store.go", 9);
        let roots = [dir.path().display().to_string()];
        let mut finder = SourceFinder::new(&roots, Some("example.com/mod"));
        let snippet = finder.snippet("example.com/mod/pkg/store.go", 5);
        let SourceSnippet::Found { path, .. } = snippet else {
            panic!("store.go not found: {snippet:?}");
        };
        assert_eq!(path, dir.path().join("pkg/store.go").display().to_string());
    }

    #[test]
    fn explicit_module_mapping() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "v2/x.go", 3);
        let roots = [format!("example.com/lib={}", dir.path().display())];
        let mut finder = SourceFinder::new(&roots, None);
        assert!(matches!(
            finder.snippet("example.com/lib/v2/x.go", 2),
            SourceSnippet::Found { .. }
        ));
    }

    #[test]
    fn moved_tree_found_by_suffix() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "cmd/server/main.go", 12);
        let roots = [dir.path().display().to_string()];
        let mut finder = SourceFinder::new(&roots, None);
        let snippet = finder.snippet("/build/ci/checkout/cmd/server/main.go", 6);
        assert!(
            matches!(snippet, SourceSnippet::Found { .. }),
            "{snippet:?}"
        );
    }

    #[test]
    fn cgo_generated_file_is_explained() {
        let mut finder = SourceFinder::new(&[], None);
        let SourceSnippet::NotFound { tried } = finder.snippet("_cgo_gotypes.go", 12) else {
            panic!("the file does not exist");
        };
        assert_eq!(tried.len(), 1, "{tried:?}");
        assert!(tried[0].contains("written by cgo"), "{tried:?}");
    }

    #[test]
    fn tried_paths_are_listed_once() {
        let mut finder = SourceFinder::new(&["/gone".to_owned()], None);
        let SourceSnippet::NotFound { tried } = finder.snippet("/gone/file.go", 3) else {
            panic!("the file does not exist");
        };
        // The root and the file's last component rebuild the file's path.
        assert_eq!(tried, vec!["/gone/file.go", "/gone/gone/file.go"]);
    }

    #[test]
    fn missing_file_lists_tried_paths() {
        let mut finder = SourceFinder::new(&["/nonexistent-root".to_owned()], None);
        let SourceSnippet::NotFound { tried } = finder.snippet("/gone/pkg/file.go", 3) else {
            panic!("a missing file was found");
        };
        assert_eq!(tried[0], "/gone/pkg/file.go");
        assert!(tried.contains(&"/nonexistent-root/file.go".to_owned()));
    }

    #[test]
    fn line_past_end_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        write_source(dir.path(), "short.go", 2);
        let file = dir.path().join("short.go");
        let mut finder = SourceFinder::new(&[], None);
        let SourceSnippet::NotFound { tried } = finder.snippet(file.to_str().unwrap(), 50) else {
            panic!("line 50 of a 2-line file was shown");
        };
        assert!(tried[0].contains("has 2 lines"), "{tried:?}");
    }
}

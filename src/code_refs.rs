//! `gatehouse code-refs`: where a source tree mentions each flag key, so finished flags can be
//! removed from the code and keys no code uses can be archived.
//!
//! The tree is walked with the `ignore` crate (ripgrep's walker: `.gitignore`, `.ignore` and
//! hidden files respected, one thread per core), and every file is searched for all keys at
//! once with an Aho-Corasick automaton. A key counts where it stands as a whole word: the bytes
//! around it are not letters, digits, `_` or `-`, so `checkout` is not found inside
//! `new-checkout` or `checkout_v2`, in any language. Binary files (a NUL byte in their first
//! 8 KiB) and files over [`MAX_FILE_BYTES`] are skipped.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aho_corasick::AhoCorasick;
use serde::Serialize;

/// Largest file searched; larger ones are generated or data, not code.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One mention of a key: the file (relative to the scanned root) and the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reference {
    pub file: String,
    pub line: usize,
}

/// What a scan found: every key with its references (sorted), and how many files were read.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    pub root: String,
    pub files_scanned: usize,
    pub flags: Vec<FlagReferences>,
    /// Keys found nowhere, sorted.
    pub unreferenced: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct FlagReferences {
    pub key: String,
    pub references: Vec<Reference>,
}

/// Scans `root` for `keys`.
pub fn scan(root: &Path, keys: &[String]) -> Result<Scan, String> {
    if !root.exists() {
        return Err(format!("{} does not exist", root.display()));
    }
    let mut keys: Vec<String> = keys.to_vec();
    keys.sort();
    keys.dedup();
    let found: Mutex<Vec<Vec<Reference>>> = Mutex::new(vec![Vec::new(); keys.len()]);
    let files = std::sync::atomic::AtomicUsize::new(0);
    if !keys.is_empty() {
        let automaton = AhoCorasick::new(&keys).map_err(|e| format!("cannot search for the keys: {e}"))?;
        ignore::WalkBuilder::new(root).build_parallel().run(|| {
            let (automaton, found, files) = (&automaton, &found, &files);
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return ignore::WalkState::Continue;
                };
                if entry.file_type().is_some_and(|t| t.is_file()) {
                    let hits = search_file(entry.path(), automaton);
                    if let Some(hits) = hits {
                        files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if !hits.is_empty() {
                            let file = relative(root, entry.path());
                            let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                            for (key, line) in hits {
                                found[key].push(Reference {
                                    file: file.clone(),
                                    line,
                                });
                            }
                        }
                    }
                }
                ignore::WalkState::Continue
            })
        });
    }
    let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut flags = Vec::new();
    let mut unreferenced = Vec::new();
    for (key, mut references) in keys.into_iter().zip(found) {
        if references.is_empty() {
            unreferenced.push(key);
        } else {
            references.sort();
            references.dedup();
            flags.push(FlagReferences { key, references });
        }
    }
    Ok(Scan {
        root: root.display().to_string(),
        files_scanned: files.into_inner(),
        flags,
        unreferenced,
    })
}

/// Every `(key index, line)` where a key stands as a whole word in the file; `None` for a file
/// that is skipped (unreadable, binary, too large).
fn search_file(path: &Path, automaton: &AhoCorasick) -> Option<Vec<(usize, usize)>> {
    let size = std::fs::metadata(path).ok()?.len();
    if size > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return None;
    }
    Some(whole_words(&bytes, automaton))
}

/// A byte that continues a key, so a match next to it is part of a longer word.
fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The `(key index, 1-based line)` of every whole-word match in `text`.
fn whole_words(text: &[u8], automaton: &AhoCorasick) -> Vec<(usize, usize)> {
    let mut hits = Vec::new();
    // Where the lines end, found once the file has a match at all.
    let mut newlines: Option<Vec<usize>> = None;
    for m in automaton.find_overlapping_iter(text) {
        let before = m.start().checked_sub(1).map(|i| text[i]);
        let after = text.get(m.end()).copied();
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            continue;
        }
        let newlines = newlines.get_or_insert_with(|| {
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect()
        });
        let line = newlines.partition_point(|&n| n < m.start()) + 1;
        hits.push((m.pattern().as_usize(), line));
    }
    hits.sort_unstable_by_key(|&(key, line)| (line, key));
    hits
}

fn relative(root: &Path, path: &Path) -> String {
    let relative: PathBuf = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    relative.display().to_string()
}

/// The scan as text: each key with its `file:line` references, then the keys found nowhere.
pub fn to_text(scan: &Scan) -> String {
    let mut out = String::new();
    for flag in &scan.flags {
        let count = flag.references.len();
        let noun = if count == 1 { "reference" } else { "references" };
        out.push_str(&format!("{} ({count} {noun})\n", flag.key));
        for reference in &flag.references {
            out.push_str(&format!("  {}:{}\n", reference.file, reference.line));
        }
    }
    if scan.unreferenced.is_empty() {
        out.push_str(&format!(
            "Every flag is referenced in {} ({} files scanned).\n",
            scan.root, scan.files_scanned
        ));
    } else {
        out.push_str(&format!(
            "Not found in {} ({} files scanned): {}\n",
            scan.root,
            scan.files_scanned,
            scan.unreferenced.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(text: &str, keys: &[&str]) -> Vec<(usize, usize)> {
        whole_words(text.as_bytes(), &AhoCorasick::new(keys).unwrap())
    }

    #[test]
    fn keys_count_only_as_whole_words() {
        let keys = ["checkout", "new-checkout", "beta.search"];
        let text = "if (flags.isEnabled(\"new-checkout\")) {\n  checkout_v2();\n}\n\
                    // checkout\nuse(\"beta.search\") // mycheckout checkout-old\n";
        assert_eq!(hits(text, &keys), vec![(1, 1), (0, 4), (2, 5)]);
    }

    #[test]
    fn a_tree_is_scanned_with_its_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("build")).unwrap();
        // The walker reads .gitignore inside a git repository.
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
        std::fs::write(root.join("src/app.ts"), "x\nisEnabled('new-checkout')\n").unwrap();
        std::fs::write(root.join("src/app.py"), "client.flag(\"new-checkout\")\n").unwrap();
        std::fs::write(root.join("build/out.js"), "'old-search'\n").unwrap();
        std::fs::write(root.join("src/blob.bin"), b"\0old-search\0").unwrap();
        let keys = vec!["new-checkout".to_string(), "old-search".to_string()];
        let scan = scan(root, &keys).unwrap();
        assert_eq!(scan.flags.len(), 1);
        assert_eq!(
            scan.flags[0].references,
            vec![
                Reference {
                    file: "src/app.py".into(),
                    line: 1
                },
                Reference {
                    file: "src/app.ts".into(),
                    line: 2
                },
            ]
        );
        assert_eq!(scan.unreferenced, ["old-search"]);
        let text = to_text(&scan);
        assert!(
            text.contains("new-checkout (2 references)\n  src/app.py:1\n  src/app.ts:2\n"),
            "{text}"
        );
        assert!(text.contains("Not found in"), "{text}");
    }
}

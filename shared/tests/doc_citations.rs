//! Keeps the citations of the protocol reference honest.
//!
//! Code comments point readers to `shared/docs/protocol.md` by section number. This test
//! reads the document's numbered headings (`## 4. …`, `### 4.13 …`) and scans every `.rs`
//! file of the workspace, the README and the document itself:
//! - every mention of the document's file name must use the path inside the repository,
//!   `shared/docs/protocol.md` (a bare name pointed at a file outside the repository once);
//! - every section sign followed by a number must name a heading that exists. The only
//!   exception is an RFC's section (`RFC 9112` followed by the sign), which cites another text.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The section sign, spelled out so that this file holds no citation of its own.
const SECTION: char = '\u{a7}';
/// The document's file name, likewise spelled in two parts.
const DOC_NAME: &str = concat!("protocol", ".md");
/// The path every mention of the document must use.
const DOC_PATH: &str = concat!("shared/docs/", "protocol", ".md");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the shared crate lives inside the workspace")
        .to_path_buf()
}

/// Section numbers of the document's headings: `## 4. Title` gives `4`, `### 4.13 Title`
/// gives `4.13`.
fn sections(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter(|line| line.starts_with('#'))
        .filter_map(|line| line.trim_start_matches('#').split_whitespace().next())
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| is_section_number(word))
        .map(str::to_string)
        .collect()
}

fn is_section_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Every `.rs` file under `dir`, skipping build output and hidden directories.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The section numbers a line cites, each with whether it is an RFC's section.
fn cited_sections(line: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices(SECTION) {
        let rest = &line[at + SECTION.len_utf8()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.').to_string();
        if number.is_empty() {
            continue;
        }
        found.push((number, cites_an_rfc(&line[..at])));
    }
    found
}

/// Whether the text before a section sign ends with `RFC <number> `.
fn cites_an_rfc(before: &str) -> bool {
    let before = before.trim_end();
    let digits = before.trim_end_matches(|c: char| c.is_ascii_digit());
    digits.len() < before.len() && digits.trim_end().ends_with("RFC")
}

/// Problems in one file's text, as `path:line: what` strings.
fn check(path: &str, text: &str, known: &BTreeSet<String>, cited: &mut usize) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let here = format!("{path}:{}", index + 1);
        for (at, _) in line.match_indices(DOC_NAME) {
            if !line[..at + DOC_NAME.len()].ends_with(DOC_PATH) {
                problems.push(format!(
                    "{here}: cites {DOC_NAME} without the path {DOC_PATH}"
                ));
            }
        }
        for (number, rfc) in cited_sections(line) {
            if rfc {
                continue;
            }
            *cited += 1;
            if !known.contains(&number) {
                problems.push(format!(
                    "{here}: cites section {number}, which {DOC_PATH} does not have"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_citation_names_an_existing_section_of_the_protocol_reference() {
    let root = workspace_root();
    let doc = fs::read_to_string(root.join(DOC_PATH)).expect("read the protocol reference");
    let known = sections(&doc);
    assert!(
        known.contains("1") && known.contains("11"),
        "headings not recognised: {known:?}"
    );

    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.push(root.join("README.md"));
    files.push(root.join(DOC_PATH));
    files.sort();

    let mut problems = Vec::new();
    let mut cited = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        problems.extend(check(&shown, &text, &known, &mut cited));
    }
    assert!(
        problems.is_empty(),
        "citations of {DOC_PATH} that do not hold:\n{}",
        problems.join("\n")
    );
    // The scan must have seen the citations, or it checked nothing.
    assert!(
        cited > 30,
        "only {cited} citations found: is the scan looking in the right place?"
    );
}

#[test]
fn the_checker_catches_what_it_should() {
    let known = sections("# Title\n## 2. Framing\n### 2.3 Arguments\n## 11. Deviations\n");
    assert_eq!(
        known.iter().map(String::as_str).collect::<Vec<_>>(),
        ["11", "2", "2.3"]
    );
    let s = SECTION;
    let mut cited = 0;
    let good = format!("// ({DOC_PATH} {s}2.3, {s}11). RFC 9112 {s}2.2 is another text.");
    assert!(check("a.rs", &good, &known, &mut cited).is_empty());
    assert_eq!(cited, 2);
    let missing = format!("// ({DOC_PATH} {s}2.4)");
    assert_eq!(check("a.rs", &missing, &known, &mut cited).len(), 1);
    let bare = format!("// ({DOC_NAME} {s}2.3)");
    assert_eq!(check("a.rs", &bare, &known, &mut cited).len(), 1);
    let range = format!("//! {DOC_PATH} {s}2–{s}11.");
    assert!(check("a.rs", &range, &known, &mut cited).is_empty());
}

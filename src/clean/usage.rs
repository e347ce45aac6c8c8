//! Disk space a directory tree takes, as `du` counts it: allocated blocks,
//! symbolic links not followed, a hard-linked file once, one filesystem.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated to `path` and everything under it; 0 if it is not there.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![(path.to_path_buf(), meta)];
    let dev = stack[0].1.dev();
    while let Some((p, m)) = stack.pop() {
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total += m.blocks() * 512;
        if !m.is_dir() || m.dev() != dev {
            continue;
        }
        let Ok(entries) = fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(em) = e.metadata() {
                stack.push((e.path(), em));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_count_once_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        fs::create_dir(&d).unwrap();
        let empty = disk_usage(&d);
        fs::write(d.join("a"), vec![7u8; 100_000]).unwrap();
        let one = disk_usage(&d);
        assert!(one >= empty + 100_000, "{one}");
        fs::hard_link(d.join("a"), d.join("b")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), d.join("up")).unwrap();
        let linked = disk_usage(&d);
        assert!(linked < one + 50_000, "{linked} vs {one}");
        assert_eq!(disk_usage(&tmp.path().join("missing")), 0);
    }
}

//! `spec.filter`: which servers of a registry are kept, by name and by tag, with glob
//! patterns (`github-*`, `io.github.*/*`, `?` for one character). An include list keeps
//! only what matches it (everything when empty); an exclude list drops what matches it
//! and wins over include. A server passes when it passes both the name and tag filters;
//! for tags, one matching tag is enough to include or exclude it.

use api::registry::{IncludeExclude, RegistryFilter};

use super::document::Registry;

/// The registry without the servers `filter` drops.
pub fn apply(mut registry: Registry, filter: Option<&RegistryFilter>) -> Registry {
    let Some(filter) = filter else {
        return registry;
    };
    registry
        .servers
        .retain(|name, server| keeps(filter, name, &server.common.tags));
    registry
        .remote_servers
        .retain(|name, server| keeps(filter, name, &server.common.tags));
    registry
}

/// Whether a server called `name` with `tags` passes `filter`.
pub fn keeps(filter: &RegistryFilter, name: &str, tags: &[String]) -> bool {
    let names = filter
        .names
        .as_ref()
        .is_none_or(|lists| passes(lists, |pattern| glob(pattern, name)));
    let tags = filter
        .tags
        .as_ref()
        .is_none_or(|lists| passes(lists, |pattern| tags.iter().any(|tag| glob(pattern, tag))));
    names && tags
}

fn passes(lists: &IncludeExclude, matches: impl Fn(&str) -> bool) -> bool {
    let included = lists.include.is_empty() || lists.include.iter().any(|p| matches(p));
    let excluded = lists.exclude.iter().any(|p| matches(p));
    included && !excluded
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also
/// none) and `?` exactly one; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`: linear in practice, and no
    // recursion a hostile pattern could blow up.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(include: &[&str], exclude: &[&str]) -> Option<IncludeExclude> {
        Some(IncludeExclude {
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn glob_matches_stars_and_question_marks() {
        for (pattern, text) in [
            ("github-*", "github-issues"),
            ("github-*", "github-"),
            ("*", ""),
            ("*-mcp", "fetch-mcp"),
            ("io.github.*/*", "io.github.stacklok/fetch"),
            ("t?me", "time"),
            ("a*b*c", "aXXbYYc"),
            ("fetch", "fetch"),
        ] {
            assert!(glob(pattern, text), "{pattern} should match {text}");
        }
        for (pattern, text) in [
            ("github-*", "gitlab-issues"),
            ("fetch", "fetcher"),
            ("t?me", "tme"),
            ("a*b*c", "aXXbYY"),
            ("", "x"),
        ] {
            assert!(!glob(pattern, text), "{pattern} should not match {text}");
        }
    }

    #[test]
    fn no_filter_keeps_everything() {
        assert!(keeps(&RegistryFilter::default(), "anything", &[]));
    }

    #[test]
    fn name_include_keeps_only_matching_servers() {
        let filter = RegistryFilter {
            names: lists(&["github-*", "fetch"], &[]),
            tags: None,
        };
        assert!(keeps(&filter, "github-issues", &[]));
        assert!(keeps(&filter, "fetch", &[]));
        assert!(!keeps(&filter, "time", &[]));
    }

    #[test]
    fn exclude_wins_over_include() {
        let filter = RegistryFilter {
            names: lists(&["github-*"], &["github-admin"]),
            tags: lists(&[], &["experimental"]),
        };
        assert!(keeps(&filter, "github-issues", &tags(&["web"])));
        assert!(!keeps(&filter, "github-admin", &tags(&["web"])));
        assert!(!keeps(
            &filter,
            "github-issues",
            &tags(&["web", "experimental"])
        ));
    }

    #[test]
    fn tag_include_needs_one_matching_tag() {
        let filter = RegistryFilter {
            names: None,
            tags: lists(&["web", "time*"], &[]),
        };
        assert!(keeps(&filter, "fetch", &tags(&["fetch", "web"])));
        assert!(keeps(&filter, "time", &tags(&["timezone"])));
        assert!(!keeps(&filter, "db", &tags(&["database"])));
        assert!(!keeps(&filter, "untagged", &[]));
    }
}

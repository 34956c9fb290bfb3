//! The documents table as the daemon keeps it: one index per record (all metadata, one sealed
//! vault record), queried in memory, plus the LRU bookkeeping of cached contents. Pure logic:
//! no I/O here, so that List is fast (10,000 entries) and testable.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use epa_ipc::types::{DocumentQuery, DocumentSummary, SortColumn};
use serde::{Deserialize, Serialize};

/// One DocumentEntry as cached (Approved entries of FindDocuments).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedEntry {
    /// uniqueId: the id clients use.
    pub id: String,
    /// entryUUID (ITI-62 deletes by it).
    pub entry_uuid: String,
    pub repository_unique_id: Option<String>,
    pub home_community_id: Option<String>,
    pub title: String,
    pub author: String,
    pub by_me: bool,
    pub mime_type: String,
    pub category: String,
    pub class_code: String,
    pub class_display: String,
    pub created_unix: u64,
    pub size: Option<u64>,
    /// SHA-1 hex of the content, when the registry gave one.
    pub hash: Option<String>,
    pub comment: String,
    /// rootDocumentUniqueId reference (Constraint Management hides by it).
    pub root_id: Option<String>,
    pub accesses: u32,
    /// Constraint Management assignment hiding this document, if any.
    pub hidden_by: Option<String>,
}

/// The sealed per-record index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredIndex {
    pub entries: Vec<CachedEntry>,
    pub synced_unix: u64,
}

/// Cached contents: size and last use, for the size limit (LRU).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContentLru {
    pub items: BTreeMap<String, ContentUse>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ContentUse {
    pub size: u64,
    /// A logical clock (monotonic per record), not wall time: eviction order only.
    pub tick: u64,
}

impl ContentLru {
    pub fn total(&self) -> u64 {
        self.items.values().map(|u| u.size).sum()
    }

    fn next_tick(&self) -> u64 {
        self.items.values().map(|u| u.tick).max().unwrap_or(0) + 1
    }

    pub fn touch(&mut self, id: &str, size: u64) {
        let tick = self.next_tick();
        self.items.insert(id.to_owned(), ContentUse { size, tick });
    }

    /// Ids to evict, least recently used first, until the total fits `limit` (the entry just
    /// touched, `keep`, stays even when it alone is larger).
    pub fn evict(&mut self, limit: u64, keep: &str) -> Vec<String> {
        let mut order: Vec<(u64, String)> = self
            .items
            .iter()
            .filter(|(id, _)| id.as_str() != keep)
            .map(|(id, u)| (u.tick, id.clone()))
            .collect();
        order.sort();
        let mut total = self.total();
        let mut out = Vec::new();
        for (_, id) in order {
            if total <= limit {
                break;
            }
            if let Some(u) = self.items.remove(&id) {
                total = total.saturating_sub(u.size);
                out.push(id);
            }
        }
        out
    }
}

/// An entry with its search keys lowered once (List runs on every keystroke of the search box).
#[derive(Debug, Clone)]
pub struct IndexedEntry {
    pub entry: CachedEntry,
    title_lc: String,
    author_lc: String,
}

impl IndexedEntry {
    pub fn new(entry: CachedEntry) -> Self {
        Self {
            title_lc: entry.title.to_lowercase(),
            author_lc: entry.author.to_lowercase(),
            entry,
        }
    }
}

/// The in-memory table of one record.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub entries: Vec<IndexedEntry>,
    pub synced_unix: u64,
}

impl Index {
    pub fn from_stored(s: StoredIndex) -> Self {
        Self {
            entries: s.entries.into_iter().map(IndexedEntry::new).collect(),
            synced_unix: s.synced_unix,
        }
    }

    pub fn to_stored(&self) -> StoredIndex {
        StoredIndex {
            entries: self.entries.iter().map(|e| e.entry.clone()).collect(),
            synced_unix: self.synced_unix,
        }
    }

    pub fn get(&self, id: &str) -> Option<&CachedEntry> {
        self.entries
            .iter()
            .find(|e| e.entry.id == id)
            .map(|e| &e.entry)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut CachedEntry> {
        self.entries
            .iter_mut()
            .find(|e| e.entry.id == id)
            .map(|e| &mut e.entry)
    }

    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.entry.id != id);
        before != self.entries.len()
    }

    pub fn upsert(&mut self, entry: CachedEntry) {
        match self.entries.iter_mut().find(|e| e.entry.id == entry.id) {
            Some(e) => *e = IndexedEntry::new(entry),
            None => self.entries.push(IndexedEntry::new(entry)),
        }
    }

    /// The page `q` asks for, and how many entries matched in all.
    pub fn query<'a>(&'a self, q: &DocumentQuery) -> (Vec<&'a CachedEntry>, usize) {
        let needle = q.query.trim().to_lowercase();
        let author = q.author.trim().to_lowercase();
        let mut hits: Vec<&IndexedEntry> = self
            .entries
            .iter()
            .filter(|e| matches(e, q, &needle, &author))
            .collect();
        hits.sort_by(|a, b| {
            let o = compare(&a.entry, &b.entry, q.sort);
            // Ties: newest first, then id, so that paging is stable.
            let o = if q.descending { o.reverse() } else { o };
            o.then_with(|| b.entry.created_unix.cmp(&a.entry.created_unix))
                .then_with(|| a.entry.id.cmp(&b.entry.id))
        });
        let total = hits.len();
        let offset = q.offset as usize;
        let limit = q.limit.map_or(usize::MAX, |l| l as usize);
        let page = hits
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|e| &e.entry)
            .collect();
        (page, total)
    }
}

fn matches(e: &IndexedEntry, q: &DocumentQuery, needle: &str, author: &str) -> bool {
    let d = &e.entry;
    (needle.is_empty() || e.title_lc.contains(needle) || e.author_lc.contains(needle))
        && (author.is_empty() || e.author_lc.contains(author))
        && (q.mime_types.is_empty()
            || q.mime_types
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&d.mime_type)))
        && (q.categories.is_empty() || q.categories.iter().any(|c| c == &d.category))
        && (q.class_codes.is_empty() || q.class_codes.iter().any(|c| c == &d.class_code))
        && q.created_from_unix.is_none_or(|t| d.created_unix >= t)
        && q.created_to_unix.is_none_or(|t| d.created_unix <= t)
}

fn compare(a: &CachedEntry, b: &CachedEntry, col: SortColumn) -> Ordering {
    match col {
        SortColumn::Created => a.created_unix.cmp(&b.created_unix),
        SortColumn::Title => cmp_text(&a.title, &b.title),
        SortColumn::Author => cmp_text(&a.author, &b.author),
        SortColumn::Type => a.mime_type.cmp(&b.mime_type),
        SortColumn::Accesses => a.accesses.cmp(&b.accesses),
    }
}

/// Case-insensitive, so that "röntgenaufnahme" sorts next to "Röntgen".
fn cmp_text(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// The view of a cached entry.
pub fn summary(e: &CachedEntry, cached: bool) -> DocumentSummary {
    DocumentSummary {
        id: e.id.clone(),
        title: e.title.clone(),
        author: e.author.clone(),
        by_me: e.by_me,
        mime_type: e.mime_type.clone(),
        category: e.category.clone(),
        class_code: e.class_code.clone(),
        class_display: e.class_display.clone(),
        created_unix: e.created_unix,
        size: e.size.unwrap_or(0),
        accesses: e.accesses,
        hidden: e.hidden_by.is_some(),
        comment: e.comment.clone(),
        cached,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn e(id: &str, title: &str, author: &str, created: u64, mime: &str, acc: u32) -> CachedEntry {
        CachedEntry {
            id: id.into(),
            title: title.into(),
            author: author.into(),
            created_unix: created,
            mime_type: mime.into(),
            accesses: acc,
            category: if author.is_empty() {
                "patient"
            } else {
                "reports"
            }
            .into(),
            ..Default::default()
        }
    }

    fn index() -> Index {
        let mut i = Index::default();
        for x in [
            e("1", "image001", "", 30, "image/jpeg", 1),
            e("2", "röntgenaufnahme", "", 20, "image/png", 0),
            e("3", "Demo PDF", "", 10, "application/pdf", 1),
            e("4", "Arztbrief", "Dr. Sommer", 5, "application/pdf", 2),
        ] {
            i.upsert(x);
        }
        i
    }

    fn ids(v: &[&CachedEntry]) -> Vec<String> {
        v.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn default_is_newest_first_and_search_is_case_insensitive() {
        let i = index();
        let (p, n) = i.query(&DocumentQuery::default());
        assert_eq!(
            (ids(&p), n),
            (vec!["1".into(), "2".into(), "3".into(), "4".into()], 4)
        );
        let q = DocumentQuery {
            query: "RÖNTGEN".into(),
            ..Default::default()
        };
        assert_eq!(ids(&i.query(&q).0), vec!["2"]);
        let q = DocumentQuery {
            query: "sommer".into(),
            ..Default::default()
        };
        assert_eq!(ids(&i.query(&q).0), vec!["4"]);
    }

    #[test]
    fn filters_sort_and_paging_combine() {
        let i = index();
        let q = DocumentQuery {
            mime_types: vec!["application/pdf".into()],
            sort: SortColumn::Title,
            descending: false,
            ..Default::default()
        };
        assert_eq!(ids(&i.query(&q).0), vec!["4", "3"]);
        let q = DocumentQuery {
            created_from_unix: Some(10),
            created_to_unix: Some(20),
            ..Default::default()
        };
        assert_eq!(ids(&i.query(&q).0), vec!["2", "3"]);
        let q = DocumentQuery {
            sort: SortColumn::Accesses,
            offset: 1,
            limit: Some(2),
            ..Default::default()
        };
        let (p, n) = i.query(&q);
        assert_eq!((ids(&p), n), (vec!["1".into(), "3".into()], 4));
        let q = DocumentQuery {
            categories: vec!["patient".into()],
            sort: SortColumn::Type,
            descending: false,
            ..Default::default()
        };
        assert_eq!(ids(&i.query(&q).0), vec!["3", "1", "2"]);
    }

    #[test]
    fn lru_evicts_least_recently_used_but_keeps_the_new_one() {
        let mut l = ContentLru::default();
        l.touch("a", 10);
        l.touch("b", 10);
        l.touch("a", 10);
        l.touch("c", 15);
        assert_eq!(l.evict(20, "c"), vec!["b".to_owned(), "a".to_owned()]);
        assert_eq!(l.total(), 15);
        l.touch("d", 100);
        assert_eq!(l.evict(20, "d"), vec!["c".to_owned()]);
        assert!(l.items.contains_key("d"));
    }
}

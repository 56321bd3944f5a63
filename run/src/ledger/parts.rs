//! A manifest's file list, in parts.
//!
//! A COMMIT or `_SUCCESS` of up to [`PART_FILES`] files lists them inline. A larger one
//! names part objects instead, each a JSON array of up to [`PART_FILES`] entries in path
//! order, with its count, bytes and CRC-64/NVME, written before the manifest that names
//! them. So a work-table of a million files is written, read, restored, verified and
//! published a part at a time, and never held whole.
//!
//! Where the parts are: a COMMIT's under `work/<stage>/COMMIT.parts/<attempt>/` (racing
//! attempts never share one), a `_SUCCESS`'s under `_SUCCESS.parts/` beside it, a name
//! Hadoop and Spark readers skip as they skip `_SUCCESS`.

use super::{parse_json, to_compact_json};
use crate::store::{
    Crc64, Crc64Nvme, FileEntry, FileSink, Listing, ObjectMeta, PutMode, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Files listed inline, or in each part.
pub const PART_FILES: usize = 10_000;

/// The folder of a `_SUCCESS`'s parts, relative to the output it vouches for.
pub const SUCCESS_PARTS: &str = "_SUCCESS.parts/";

/// One part object of a manifest's file list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    /// The part object's key in the store.
    pub key: String,
    pub files: u64,
    /// The bytes of the files it lists.
    pub bytes: u64,
    /// CRC-64/NVME of the part object itself.
    pub crc64nvme: Crc64Nvme,
}

/// A manifest's file list: inline, or in parts (never both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileList {
    pub files: Vec<FileEntry>,
    pub parts: Vec<PartRef>,
}

impl FileList {
    pub fn count(&self) -> u64 {
        self.files.len() as u64 + self.parts.iter().map(|p| p.files).sum::<u64>()
    }

    pub fn bytes(&self) -> u64 {
        let inline: u64 = self.files.iter().map(|f| f.size).sum();
        inline + self.parts.iter().map(|p| p.bytes).sum::<u64>()
    }

    /// Its entries, a part at a time.
    pub fn chunks(&self) -> Chunks {
        Chunks {
            inline: (!self.files.is_empty()).then(|| self.files.clone()),
            parts: self.parts.clone().into_iter(),
        }
    }
}

/// A file list read a part at a time.
pub struct Chunks {
    inline: Option<Vec<FileEntry>>,
    parts: std::vec::IntoIter<PartRef>,
}

impl Chunks {
    /// The next part's entries (read and checked against its count and checksum), or
    /// `None` at the end. A part that is missing or damaged is an error naming it.
    pub async fn next<S: Store>(
        &mut self,
        store: &S,
    ) -> Result<Option<Vec<FileEntry>>, StoreError> {
        if let Some(inline) = self.inline.take() {
            return Ok(Some(inline));
        }
        let Some(part) = self.parts.next() else {
            return Ok(None);
        };
        let (bytes, _) = store.get(&part.key).await?;
        let object = store.locate(&part.key);
        let mut sum = Crc64::default();
        sum.update(&bytes);
        let found = sum.finish().crc64nvme;
        if found != part.crc64nvme {
            return Err(StoreError::Corrupt {
                object,
                detail: format!(
                    "its CRC-64/NVME is {found}, the manifest that names it says {}",
                    part.crc64nvme
                ),
            });
        }
        let entries: Vec<FileEntry> = parse_json(object.clone(), &bytes)?;
        if entries.len() as u64 != part.files {
            return Err(StoreError::Corrupt {
                object,
                detail: format!(
                    "it lists {} files, the manifest that names it says {}",
                    entries.len(),
                    part.files
                ),
            });
        }
        Ok(Some(entries))
    }
}

/// Writes a file list as it is produced: inline if it ends up [`PART_FILES`] files or
/// fewer, otherwise a part object per [`PART_FILES`] files under `prefix`.
pub struct PartWriter<'a, S> {
    store: &'a S,
    prefix: String,
    buffer: Vec<FileEntry>,
    parts: Vec<PartRef>,
    part_files: usize,
}

impl<'a, S: Store> PartWriter<'a, S> {
    /// `prefix` ends in `/`. Parts of [`PART_FILES`] files, or of `RESPAWN_PART_FILES`
    /// (a test hook: the tests make lists of several parts from a few thousand files).
    pub fn new(store: &'a S, prefix: String) -> Self {
        let part_files = std::env::var("RESPAWN_PART_FILES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(PART_FILES);
        Self::with_part_files(store, prefix, part_files)
    }

    /// With parts of `part_files` files (tests use small parts).
    pub fn with_part_files(store: &'a S, prefix: String, part_files: usize) -> Self {
        PartWriter {
            store,
            prefix,
            buffer: Vec::new(),
            parts: Vec::new(),
            part_files: part_files.max(1),
        }
    }

    /// The list written: inline, or the parts.
    pub async fn finish(mut self) -> Result<FileList, StoreError> {
        if self.parts.is_empty() && self.buffer.len() <= self.part_files {
            return Ok(FileList {
                files: std::mem::take(&mut self.buffer),
                parts: Vec::new(),
            });
        }
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.write_part(&rest).await?;
        }
        Ok(FileList {
            files: Vec::new(),
            parts: self.parts,
        })
    }

    /// Writes a copy of an existing part (a `_SUCCESS`'s from its COMMIT's, inside the
    /// store), under this writer's prefix.
    pub async fn copy_part(&mut self, part: &PartRef) -> Result<(), StoreError> {
        let key = self.next_key();
        self.store.copy(&part.key, &key).await?;
        self.parts.push(PartRef {
            key,
            ..part.clone()
        });
        Ok(())
    }

    fn next_key(&self) -> String {
        format!("{}part-{:05}.json", self.prefix, self.parts.len())
    }

    async fn write_part(&mut self, entries: &[FileEntry]) -> Result<(), StoreError> {
        let body = to_compact_json(&entries);
        let mut sum = Crc64::default();
        sum.update(&body);
        let key = self.next_key();
        self.store.put(&key, body, PutMode::Overwrite).await?;
        self.parts.push(PartRef {
            key,
            files: entries.len() as u64,
            bytes: entries.iter().map(|f| f.size).sum(),
            crc64nvme: sum.finish().crc64nvme,
        });
        Ok(())
    }
}

impl<S: Store> FileSink for PartWriter<'_, S> {
    async fn push(&mut self, entries: Vec<FileEntry>) -> Result<(), StoreError> {
        self.buffer.extend(entries);
        while self.buffer.len() > self.part_files {
            let rest = self.buffer.split_off(self.part_files);
            let part = std::mem::replace(&mut self.buffer, rest);
            self.write_part(&part).await?;
        }
        Ok(())
    }
}

/// How the store's objects under a prefix differ from a file list.
#[derive(Debug)]
pub enum Difference {
    /// Listed, not in the store.
    Missing(FileEntry),
    /// In the store with another size.
    Size { entry: FileEntry, stored: u64 },
    /// In the store, not listed (a key under the prefix).
    Extra(String),
}

/// A file list compared with a listing of its prefix, both read in order a page at a
/// time (a merge, never a set of either side).
pub struct Comparison<'a, S> {
    store: &'a S,
    prefix: String,
    listing: Listing<'a, S>,
    chunks: Chunks,
    /// Keys (relative to the prefix) that are never differences: a `_SUCCESS` and its parts.
    ignored: fn(&str) -> bool,
    /// The manifest, for the error when its list is not in path order.
    manifest: String,
    object: Option<ObjectMeta>,
    chunk: std::vec::IntoIter<FileEntry>,
    entry: Option<FileEntry>,
    previous: Option<String>,
}

impl<'a, S: Store> Comparison<'a, S> {
    pub fn new(
        store: &'a S,
        prefix: &str,
        list: &FileList,
        ignored: fn(&str) -> bool,
        manifest: String,
    ) -> Self {
        Comparison {
            store,
            prefix: prefix.to_owned(),
            listing: Listing::new(store, prefix),
            chunks: list.chunks(),
            ignored,
            manifest,
            object: None,
            chunk: Vec::new().into_iter(),
            entry: None,
            previous: None,
        }
    }

    /// The next difference, in key order, or `None` when there are no more.
    pub async fn next(&mut self) -> Result<Option<Difference>, StoreError> {
        loop {
            self.fill().await?;
            let order = match (&self.object, &self.entry) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(object), Some(entry)) => {
                    relative(&object.key, &self.prefix).cmp(entry.path.as_str())
                }
            };
            match order {
                Ordering::Less => {
                    let object = self.object.take().expect("compared");
                    return Ok(Some(Difference::Extra(object.key)));
                }
                Ordering::Greater => {
                    let entry = self.entry.take().expect("compared");
                    return Ok(Some(Difference::Missing(entry)));
                }
                Ordering::Equal => {
                    let object = self.object.take().expect("compared");
                    let entry = self.entry.take().expect("compared");
                    if object.size != entry.size {
                        let stored = object.size;
                        return Ok(Some(Difference::Size { entry, stored }));
                    }
                }
            }
        }
    }

    /// Reads the next object and the next entry where there is none in hand.
    async fn fill(&mut self) -> Result<(), StoreError> {
        while self.object.is_none() {
            match self.listing.next().await? {
                Some(object) if (self.ignored)(relative(&object.key, &self.prefix)) => {}
                Some(object) => self.object = Some(object),
                None => break,
            }
        }
        if self.entry.is_none() {
            self.entry = loop {
                if let Some(entry) = self.chunk.next() {
                    break Some(entry);
                }
                match self.chunks.next(self.store).await? {
                    Some(chunk) => self.chunk = chunk.into_iter(),
                    None => break None,
                }
            };
            if let Some(entry) = &self.entry {
                if self.previous.as_deref() >= Some(entry.path.as_str()) {
                    return Err(StoreError::Corrupt {
                        object: self.manifest.clone(),
                        detail: format!("its files are not in path order at `{}`", entry.path),
                    });
                }
                self.previous = Some(entry.path.clone());
            }
        }
        Ok(())
    }
}

fn relative<'k>(key: &'k str, prefix: &str) -> &'k str {
    key.strip_prefix(prefix).unwrap_or(key)
}

/// Nothing under a work-table's prefix is ignored.
pub fn nothing(_: &str) -> bool {
    false
}

/// A published output's `_SUCCESS` and its parts are not files of the output.
pub fn success_and_parts(relative: &str) -> bool {
    relative == "_SUCCESS" || relative.starts_with(SUCCESS_PARTS)
}

#[cfg(test)]
mod tests {
    use super::{Comparison, Difference, FileList, PartWriter, nothing};
    use crate::store::{Crc64Nvme, FileEntry, FileSink, LocalStore, PutMode, Store, StoreError};

    fn entry(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            crc64nvme: Crc64Nvme(0),
        }
    }

    async fn parted(store: &LocalStore, entries: Vec<FileEntry>) -> FileList {
        let mut writer = PartWriter::with_part_files(store, "m/".into(), 2);
        writer.push(entries).await.unwrap();
        writer.finish().await.unwrap()
    }

    #[tokio::test]
    async fn a_list_compared_with_a_listing_names_each_difference_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for (key, body) in [("t/a", "1"), ("t/b", "22"), ("t/d", "4")] {
            store
                .put(key, body.into(), PutMode::Overwrite)
                .await
                .unwrap();
        }
        let list = parted(&store, vec![entry("a", 1), entry("b", 1), entry("c", 1)]).await;
        assert_eq!((list.files.len(), list.parts.len()), (0, 2));
        let mut comparison = Comparison::new(&store, "t/", &list, nothing, "M".into());
        let mut found = Vec::new();
        while let Some(difference) = comparison.next().await.unwrap() {
            found.push(match difference {
                Difference::Missing(e) => format!("missing {}", e.path),
                Difference::Size { entry, stored } => format!("{} has {stored}", entry.path),
                Difference::Extra(key) => format!("extra {key}"),
            });
        }
        assert_eq!(found, ["b has 2", "missing c", "extra t/d"]);
    }

    #[tokio::test]
    async fn a_list_out_of_path_order_is_a_damaged_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let list = parted(&store, vec![entry("b", 1), entry("c", 1), entry("a", 1)]).await;
        let mut comparison = Comparison::new(&store, "t/", &list, nothing, "the COMMIT".into());
        let error = loop {
            match comparison.next().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("an unordered list went unnoticed"),
                Err(error) => break error,
            }
        };
        assert!(
            matches!(&error, StoreError::Corrupt { object, detail } if object == "the COMMIT" && detail.contains("`a`")),
            "{error}"
        );
    }
}

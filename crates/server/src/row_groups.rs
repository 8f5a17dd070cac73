//! Reading chosen row groups of Parquet files on several threads, handing their record
//! batches over in file and row-group order. Decoding (PoCADuck's `list<int64>` points
//! above all) is most of an import's reading, and row groups decode independently.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::{bail, Context};
use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::RowGroupMetaData;

/// Rows per record batch.
const BATCH_ROWS: usize = 64 << 10;
/// Batches each reader may have decoded ahead of the consumer.
const AHEAD: usize = 2;

/// A Parquet file opened once (its footer read) and the row groups of it to read.
pub(crate) struct FileGroups {
    /// The file.
    pub path: PathBuf,
    /// Its footer, decoded.
    pub metadata: ArrowReaderMetadata,
    /// Row groups to read, ascending.
    pub groups: Vec<usize>,
}

impl FileGroups {
    /// Every row group of the file at `path`, whose footer is read now.
    pub(crate) fn whole(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let metadata = ArrowReaderMetadata::load(&file, Default::default())
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            groups: (0..metadata.metadata().num_row_groups()).collect(),
            metadata,
        })
    }

    /// The same file, footer shared, with only the row groups that `keep` accepts.
    pub(crate) fn filtered(&self, keep: impl Fn(&RowGroupMetaData) -> bool) -> Self {
        let meta = self.metadata.metadata();
        Self {
            path: self.path.clone(),
            metadata: self.metadata.clone(),
            groups: self
                .groups
                .iter()
                .copied()
                .filter(|&g| keep(meta.row_group(g)))
                .collect(),
        }
    }
}

/// What a reader thread hands over.
enum Message {
    Batch(RecordBatch),
    /// The end of one row group.
    Done,
    Failed(anyhow::Error),
}

/// Reads `columns` of every chosen row group of `files` on `readers` threads and calls
/// `each` with every batch, in file and row-group order. Stops at the first error.
pub(crate) fn read_in_order(
    files: &[FileGroups],
    columns: &[&str],
    readers: usize,
    each: &mut dyn FnMut(&Path, RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tasks: Vec<(&FileGroups, usize)> = files
        .iter()
        .flat_map(|f| f.groups.iter().map(move |g| (f, *g)))
        .collect();
    let readers = readers.clamp(1, tasks.len().max(1));
    std::thread::scope(|scope| {
        let receivers: Vec<Receiver<Message>> = (0..readers)
            .map(|k| {
                let (tx, rx) = sync_channel(AHEAD);
                // Reader k takes row groups k, k + readers, …: in order, as the consumer does.
                let mine: Vec<(&FileGroups, usize)> =
                    tasks.iter().skip(k).step_by(readers).copied().collect();
                scope.spawn(move || read_tasks(&mine, columns, &tx));
                rx
            })
            .collect();
        for (i, (file, _)) in tasks.iter().enumerate() {
            loop {
                match receivers[i % readers].recv() {
                    Ok(Message::Batch(batch)) => each(&file.path, batch)?,
                    Ok(Message::Done) => break,
                    Ok(Message::Failed(e)) => return Err(e),
                    Err(_) => bail!("a reader of {} stopped", file.path.display()),
                }
            }
        }
        // Dropping the receivers lets a reader blocked on a full channel end.
        Ok(())
    })
}

/// One reader thread: its row groups in order, each followed by `Done`, until the consumer
/// goes away or a read fails.
fn read_tasks(tasks: &[(&FileGroups, usize)], columns: &[&str], tx: &SyncSender<Message>) {
    for (file, group) in tasks {
        let sent = match read_group(file, *group, columns, tx) {
            Ok(true) => tx.send(Message::Done).is_ok(),
            Ok(false) => false,
            Err(e) => {
                let _ = tx.send(Message::Failed(e));
                false
            }
        };
        if !sent {
            return;
        }
    }
}

/// Sends the batches of one row group; `false` when the consumer went away.
fn read_group(
    file: &FileGroups,
    group: usize,
    columns: &[&str],
    tx: &SyncSender<Message>,
) -> anyhow::Result<bool> {
    let reading = || format!("reading {}", file.path.display());
    let handle = File::open(&file.path).with_context(reading)?;
    let mask = ProjectionMask::columns(file.metadata.parquet_schema(), columns.iter().copied());
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, file.metadata.clone())
        .with_row_groups(vec![group])
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .with_context(reading)?;
    for batch in reader {
        if tx
            .send(Message::Batch(batch.with_context(reading)?))
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// A file of `values` in row groups of 10 rows.
    fn write(path: &Path, values: std::ops::Range<i64>) {
        let batch = RecordBatch::try_from_iter([(
            "v",
            Arc::new(Int64Array::from_iter_values(values)) as _,
        )])
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(10))
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn groups(path: &Path, keep: impl Fn(usize) -> bool) -> FileGroups {
        let mut chosen = FileGroups::whole(path).unwrap();
        chosen.groups.retain(|g| keep(*g));
        chosen
    }

    #[test]
    fn batches_come_in_file_and_row_group_order_whatever_the_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write(&a, 0..95);
        write(&b, 1000..1033);
        // Every row group of a, the odd ones of b.
        let files = [groups(&a, |_| true), groups(&b, |g| g % 2 == 1)];
        let expected: Vec<i64> = (0..95).chain(1010..1020).chain(1030..1033).collect();
        for readers in 1..=4 {
            let mut seen = Vec::new();
            read_in_order(&files, &["v"], readers, &mut |_, batch| {
                let v = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                seen.extend(v.values().iter().copied());
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, expected, "{readers} readers");
        }
    }

    #[test]
    fn a_failure_stops_the_reading_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.parquet");
        write(&a, 0..95);
        let files = [groups(&a, |_| true)];
        // The file shrinks after its footer was read: its row groups can no longer be read.
        let bytes = std::fs::read(&a).unwrap();
        std::fs::write(&a, &bytes[..8]).unwrap();
        let mut batches = 0;
        let err = read_in_order(&files, &["v"], 2, &mut |_, _| {
            batches += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("a.parquet"), "{err:#}");
        assert_eq!(batches, 0);
        // A consumer's error stops it too, with that error.
        write(&a, 0..95);
        let files = [groups(&a, |_| true)];
        let err = read_in_order(&files, &["v"], 3, &mut |_, _| bail!("enough")).unwrap_err();
        assert_eq!(err.to_string(), "enough");
    }
}

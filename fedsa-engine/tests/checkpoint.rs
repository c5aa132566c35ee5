//! Checkpoints on a fake federation: a write that fails leaves no temporary folder and no
//! `LATEST`; what is read back is checked against the manifest; the rounds must agree.

use std::collections::BTreeMap;

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, Error, EvalMetrics, Federation, FederationSettings, NoEvents, ParamSet, Result,
    Role, Strategy, TrainStats, WeightedMean,
};
use fedsa_engine::checkpoint::{self, Checkpoint};

/// A fake client whose state cannot be saved (as when the disk fills up mid-checkpoint).
struct UnsavableClient(FakeTrainer);

impl ClientTrainer for UnsavableClient {
    fn configure(&mut self, strategy: &Strategy) -> Result<()> {
        self.0.configure(strategy)
    }
    fn roles(&self) -> BTreeMap<String, Role> {
        self.0.roles()
    }
    fn low_rank_modules(&self) -> Vec<fedsa_core::LowRankModule> {
        self.0.low_rank_modules()
    }
    fn num_train_examples(&self) -> usize {
        self.0.num_train_examples()
    }
    fn params(&self, names: &[String]) -> Result<ParamSet> {
        self.0.params(names)
    }
    fn set_params(&mut self, params: &ParamSet) -> Result<()> {
        self.0.set_params(params)
    }
    fn train(&mut self, round: usize) -> Result<TrainStats> {
        self.0.train(round)
    }
    fn evaluate(&mut self) -> Result<EvalMetrics> {
        self.0.evaluate()
    }
    fn save_state(&self) -> Result<ParamSet> {
        Err(Error::io(
            "client-2.safetensors",
            std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"),
        ))
    }
    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        self.0.load_state(state)
    }
}

fn federation(last_saves: bool) -> Federation {
    let mut clients: Vec<Box<dyn ClientTrainer>> = (0..2)
        .map(|k| Box::new(FakeTrainer::new(k, 40, 2, 3)) as Box<dyn ClientTrainer>)
        .collect();
    let last = FakeTrainer::new(2, 40, 2, 3);
    clients.push(if last_saves {
        Box::new(last)
    } else {
        Box::new(UnsavableClient(last))
    });
    let settings = FederationSettings {
        num_clients: 3,
        clients_per_round: 3,
        rounds: 2,
        seed: 1,
        failure_rate: 0.0,
        eval_every: 1,
    };
    let mut fed = Federation::new(
        settings,
        Strategy::fedsa(),
        Box::new(WeightedMean),
        clients,
        Box::new(NoEvents),
    )
    .unwrap();
    fed.run_round().unwrap();
    fed
}

#[test]
fn a_failed_checkpoint_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let e = checkpoint::save(dir.path(), &federation(false), 1.0).unwrap_err();
    assert!(format!("{e:#}").contains("no space left"), "{e:#}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(checkpoint::latest(dir.path()).unwrap(), None);
}

#[test]
fn a_checkpoint_reads_back_what_it_wrote_and_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let fed = federation(true);
    let path = checkpoint::save(dir.path(), &fed, 2.5).unwrap();
    let (round, latest) = checkpoint::latest(dir.path()).unwrap().unwrap();
    assert_eq!((round, &latest), (1, &path));
    let ckpt = Checkpoint::open(&path, round, true).unwrap();
    assert_eq!(ckpt.seconds(), 2.5);
    assert_eq!(
        ckpt.client(1).unwrap(),
        fed.clients()[1].save_state().unwrap()
    );
    assert_eq!(ckpt.server().unwrap().completed_rounds, 1);

    // The same folder presented as another round is refused.
    let e = Checkpoint::open(&path, 2, true).err().unwrap();
    assert!(
        format!("{e:#}").contains("the manifest is of round 1"),
        "{e:#}"
    );

    // One changed byte in a tensor file is caught.
    let file = path.join("client-0.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let e = ckpt.client(0).unwrap_err();
    assert!(format!("{e:#}").contains("damaged"), "{e:#}");

    // A file the manifest does not list is not trusted either.
    std::fs::write(path.join("extra.safetensors"), b"x").unwrap();
    let e = ckpt.read("extra.safetensors").unwrap_err();
    assert!(format!("{e:#}").contains("not listed"), "{e:#}");
}

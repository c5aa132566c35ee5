//! `GenerationTrainer`: one simulated client fine-tuning a causal language model on
//! prompt/response pairs. The loss is the mean cross-entropy over response tokens; evaluation
//! adds exact match of the answer extracted from a greedy generation. Optimizer, schedule,
//! clipping, RNG streams and saved state are the classifier trainer's ([`LocalLoop`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{
    ClientTrainer, EncodedSequence, EvalMetrics, LowRankModule, ParamSet, Result, Role,
    SequenceBatch, Strategy, TrainStats,
};

use crate::adapter::{AdapterSpec, ForwardCtx};
use crate::decoder::client::{DecoderClient, TokenStats};
use crate::decoder::generate::GenerateOptions;
use crate::decoder::model::DecoderModel;
use crate::training::local::LocalLoop;

/// Decodes generated ids (the response only, without the prompt) and extracts the answer to
/// compare with [`EncodedSequence::reference`]; `None` when there is no answer in the text.
pub type AnswerFn = Box<dyn Fn(&[u32]) -> Option<String> + Send + Sync>;

/// A client of the federation, training its adapter on generation examples.
pub struct GenerationTrainer {
    model: DecoderClient,
    local: LocalLoop,
    train: Vec<EncodedSequence>,
    test: Vec<EncodedSequence>,
    generation: GenerateOptions,
    answer: AnswerFn,
}

impl GenerationTrainer {
    /// Client `client_id` with its own data. Adapters start from values that depend on `seed`
    /// alone; batch order and dropout on `(seed, client_id)`. Exact match generates greedily up
    /// to `max_new_tokens` tokens, stopping at the model's EOS ids. The linear schedule spans
    /// `total_rounds` rounds of local steps.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client_id: usize,
        base: Arc<DecoderModel>,
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        training: &TrainingConfig,
        train: Vec<EncodedSequence>,
        test: Vec<EncodedSequence>,
        max_new_tokens: usize,
        answer: AnswerFn,
        seed: u64,
        total_rounds: usize,
    ) -> Result<GenerationTrainer> {
        let local = LocalLoop::new(client_id, training, train.len(), seed, total_rounds)?;
        if let Some(i) = train.iter().position(|e| e.num_targets() == 0) {
            return Err(local.client_err(format!(
                "train example {i} has no response tokens to learn from"
            )));
        }
        if let Some(i) = test
            .iter()
            .position(|e| e.reference.is_some() && (e.prompt_len == 0 || e.input_ids.is_empty()))
        {
            return Err(local.client_err(format!(
                "test example {i} has a reference answer but no prompt to generate from"
            )));
        }
        let generation = GenerateOptions::greedy(max_new_tokens, base.config().eos_ids());
        let model = DecoderClient::new(base, spec, adapter, seed)?;
        Ok(GenerationTrainer {
            model,
            local,
            train,
            test,
            generation,
            answer,
        })
    }

    /// The client's model (for inspection, tests and generation).
    pub fn model(&self) -> &DecoderClient {
        &self.model
    }

    /// The tokens this client's model generates after `prompt` (with the trainer's options
    /// unless `options` is given).
    pub fn generate(&self, prompt: &[u32], options: Option<&GenerateOptions>) -> Result<Vec<u32>> {
        self.model
            .generate(prompt, options.unwrap_or(&self.generation))
    }

    /// [`GenerationTrainer::generate`] for every prompt, in batches of the run's
    /// `eval_batch_size` (prompts of similar length together, to cut padding); in the prompts'
    /// order.
    pub fn generate_all(
        &self,
        prompts: &[&[u32]],
        options: Option<&GenerateOptions>,
    ) -> Result<Vec<Vec<u32>>> {
        let options = options.unwrap_or(&self.generation);
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(|&i| prompts[i].len());
        let mut out = vec![Vec::new(); prompts.len()];
        for chunk in order.chunks(self.local.training.eval_batch_size.max(1)) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| prompts[i]).collect();
            for (&i, generated) in chunk
                .iter()
                .zip(self.model.generate_batch(&batch, options)?)
            {
                out[i] = generated;
            }
        }
        Ok(out)
    }

    fn batch(&self, examples: &[&EncodedSequence]) -> SequenceBatch {
        SequenceBatch::pad(examples, self.model.base().pad_token_id())
    }

    /// Loss and token statistics over the test examples that have response tokens.
    fn test_token_stats(&self) -> Result<TokenStats> {
        let scored: Vec<&EncodedSequence> =
            self.test.iter().filter(|e| e.num_targets() > 0).collect();
        let mut total = TokenStats::default();
        for chunk in scored.chunks(self.local.training.eval_batch_size) {
            let s = self.model.token_stats(&self.batch(chunk))?;
            total.nll += s.nll;
            total.correct += s.correct;
            total.targets += s.targets;
        }
        Ok(total)
    }

    /// Share of test examples with a reference whose generated answer equals it (whitespace
    /// around either is ignored); 0 when no example has a reference.
    fn exact_match(&self) -> Result<f64> {
        let asked: Vec<&EncodedSequence> =
            self.test.iter().filter(|e| e.reference.is_some()).collect();
        if asked.is_empty() {
            return Ok(0.0);
        }
        let prompts: Vec<&[u32]> = asked.iter().map(|e| e.prompt()).collect();
        let generated = self.generate_all(&prompts, None)?;
        let hits = asked
            .iter()
            .zip(&generated)
            .filter(|(e, ids)| {
                let answer = (self.answer)(ids);
                answer.as_deref().map(str::trim) == e.reference.as_deref().map(str::trim)
            })
            .count();
        Ok(hits as f64 / asked.len() as f64)
    }
}

/// One optimizer step on the examples at `indices`; returns the batch loss.
fn step(
    model: &DecoderClient,
    train: &[EncodedSequence],
    local: &mut LocalLoop,
    indices: &[usize],
) -> Result<f64> {
    let refs: Vec<&EncodedSequence> = indices.iter().map(|&i| &train[i]).collect();
    let batch = SequenceBatch::pad(&refs, model.base().pad_token_id());
    let mut ctx = ForwardCtx {
        train: true,
        rng: Some(&mut local.dropout_rng),
    };
    let loss = model.loss(&batch, &mut ctx)?;
    local.update(&loss, model.params())
}

impl ClientTrainer for GenerationTrainer {
    fn configure(&mut self, strategy: &Strategy) -> Result<()> {
        self.model
            .params_mut()
            .set_trained(Role::ALL.into_iter().filter(|r| strategy.trains(*r)));
        Ok(())
    }

    fn set_trained_roles(&mut self, roles: &[Role]) -> Result<()> {
        self.model.params_mut().set_trained(roles.iter().copied());
        Ok(())
    }

    fn low_rank_modules(&self) -> Vec<LowRankModule> {
        self.model.adapters().low_rank_modules()
    }

    fn restart_factors(&mut self, seed: u64) -> Result<()> {
        let fresh = self.model.adapters().fresh_factors(seed)?;
        self.local.restart(self.model.params(), &fresh)
    }

    fn roles(&self) -> BTreeMap<String, Role> {
        self.model.params().roles()
    }

    fn num_train_examples(&self) -> usize {
        self.train.len()
    }

    fn params(&self, names: &[String]) -> Result<ParamSet> {
        self.model.params().export(names)
    }

    fn set_params(&mut self, params: &ParamSet) -> Result<()> {
        let params = self.model.adapters().take_deltas(params)?;
        self.model.params().import(&params)
    }

    fn train(&mut self, _round: usize) -> Result<TrainStats> {
        let (model, train) = (&self.model, &self.train);
        self.local.round(train.len(), |local, indices| {
            step(model, train, local, indices)
        })
    }

    /// `loss`: mean cross-entropy per response token of the test split; `accuracy` and
    /// `macro_f1`: both the exact-match rate (generation has no classes); `extra`:
    /// `exact_match` and `token_accuracy` (argmax hits on response tokens).
    fn evaluate(&mut self) -> Result<EvalMetrics> {
        let tokens = self.test_token_stats()?;
        let exact = self.exact_match()?;
        let per_token = |v: f64| {
            if tokens.targets == 0 {
                0.0
            } else {
                v / tokens.targets as f64
            }
        };
        Ok(EvalMetrics {
            loss: per_token(tokens.nll),
            accuracy: exact,
            macro_f1: exact,
            num_examples: self.test.len(),
            extra: BTreeMap::from([
                ("exact_match".to_string(), exact),
                (
                    "token_accuracy".to_string(),
                    per_token(tokens.correct as f64),
                ),
            ]),
        })
    }

    fn save_state(&self) -> Result<ParamSet> {
        self.local.save(self.model.params())
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        self.local.load(self.model.params(), state)
    }
}

//! What the rules that combine clients of different ranks (FLoRA, FlexLoRA, HetLoRA) share:
//! each client's own rank and scale per module, one module's uploaded factors as matrices with
//! their weights, and FLoRA's stacking, whose product is the weighted sum of the clients'
//! scaled products.

use fedsa_core::{
    ClientUpdate, Error, LowRankModule, ParamSet, Result, Role, TensorData, base_delta_name,
    example_weights, slice_factor,
};

use super::linalg::Mat;

/// Every client's own modules (rank and scale), as `ModuleRule::set_clients` gave them.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClientModules(Vec<Vec<LowRankModule>>);

impl ClientModules {
    pub(crate) fn new(clients: &[Vec<LowRankModule>]) -> ClientModules {
        ClientModules(clients.to_vec())
    }

    /// Client `client`'s module `module`.
    pub(crate) fn get(&self, client: usize, module: usize) -> Result<&LowRankModule> {
        self.0
            .get(client)
            .and_then(|m| m.get(module))
            .ok_or_else(|| Error::Client {
                client,
                message: format!(
                    "the server rule has no record of this client's module {module}; it was \
                     not given the clients' modules before the first round"
                ),
            })
    }

    /// Client `client`'s share of the global factor `role` of `module`, held at the largest
    /// rank: its leading rows of A or columns of B.
    pub(crate) fn own_slice(
        &self,
        client: usize,
        module: usize,
        role: Role,
        global: &TensorData,
    ) -> Result<TensorData> {
        let own = self.get(client, module)?;
        let name = if role == Role::A { &own.a } else { &own.b };
        slice_factor(name, role, global, own.rank)
    }

    /// The client of the largest rank on `module` (the first on ties): the server holds each
    /// factor as that client would.
    pub(crate) fn largest(&self, module: usize) -> Result<&LowRankModule> {
        self.0
            .iter()
            .filter_map(|m| m.get(module))
            .reduce(|best, m| if m.rank > best.rank { m } else { best })
            .ok_or_else(|| {
                Error::param(
                    format!("module {module}"),
                    "the server rule was not given the clients' modules",
                )
            })
    }
}

/// Sets module `m`'s global factors to `a` (`r × in`) and `b` (`out × r`) and records both
/// as changed, so that they go down to the clients.
pub(crate) fn set_factors(
    global: &mut ParamSet,
    m: &LowRankModule,
    (a, b): (&Mat, &Mat),
    changed: &mut Vec<String>,
) -> Result<()> {
    for (name, f) in [(&m.a, a), (&m.b, b)] {
        global.insert_tensor(
            name.clone(),
            TensorData::new(vec![f.rows, f.cols], f.to_f32())?,
        );
        changed.push(name.clone());
    }
    Ok(())
}

/// Adds `w · update` (`[out, in]`) to module `m`'s frozen-weight correction in `global`
/// (starting from zero) and returns the correction's name.
pub(crate) fn add_to_base_delta(
    global: &mut ParamSet,
    m: &LowRankModule,
    w: f64,
    update: &Mat,
) -> Result<String> {
    let name = base_delta_name(&m.name);
    let (out, inp) = (update.rows, update.cols);
    let mut delta = match global.get(&name) {
        Some(d) => Mat::from_f32(out, inp, d.data()),
        None => Mat::zeros(out, inp),
    };
    delta.add_scaled(w, update);
    global.insert_tensor(
        name.clone(),
        TensorData::new(vec![out, inp], delta.to_f32())?,
    );
    Ok(name)
}

/// One client's factors of one module: `a` `r × in`, `b` `out × r`, the client's scale `s`
/// and its weight `p` in the round (example counts).
#[derive(Debug, Clone)]
pub struct ClientFactors {
    pub client: usize,
    pub a: Mat,
    pub b: Mat,
    pub scale: f64,
    pub weight: f64,
}

/// Module `index`'s factors in each of `updates`, each at its client's own rank, with the
/// example weights `p_k`. Every client's layer must have the same `in` and `out`.
pub(crate) fn module_factors(
    module: &LowRankModule,
    index: usize,
    updates: &[ClientUpdate],
    clients: &ClientModules,
) -> Result<Vec<ClientFactors>> {
    let uploads = module.updates(updates)?;
    let weights = example_weights(&uploads);
    let mut out: Vec<ClientFactors> = Vec::with_capacity(uploads.len());
    for (u, weight) in uploads.iter().zip(weights) {
        let own = clients.get(u.client, index)?;
        let (r, inp, rows) = own.dims(u.a, u.b)?;
        if let Some(first) = out.first()
            && (first.a.cols, first.b.rows) != (inp, rows)
        {
            return Err(Error::param(
                module.name.clone(),
                format!(
                    "client {} sends a {rows} × {inp} layer where client {} sends {} × {}",
                    u.client, first.client, first.b.rows, first.a.cols
                ),
            ));
        }
        out.push(ClientFactors {
            client: u.client,
            a: Mat::from_f32(r, inp, u.a.data()),
            b: Mat::from_f32(rows, r, u.b.data()),
            scale: own.scale,
            weight,
        });
    }
    Ok(out)
}

/// FLoRA's stacking: `B = [B_1 … B_K]` (`out × Σr_k`) and `A = [p_1s_1A_1; …; p_Ks_KA_K]`
/// (`Σr_k × in`), so that `B·A = Σp_k s_k B_kA_k` exactly, whatever the ranks. Returns
/// `(B, A)`.
pub fn stack(factors: &[ClientFactors]) -> (Mat, Mat) {
    let total: usize = factors.iter().map(|f| f.a.rows).sum();
    let (out, inp) = factors.first().map_or((0, 0), |f| (f.b.rows, f.a.cols));
    let (mut b, mut a) = (Mat::zeros(out, total), Mat::zeros(total, inp));
    let mut offset = 0;
    for f in factors {
        let w = f.weight * f.scale;
        for k in 0..f.a.rows {
            for j in 0..inp {
                a.set(offset + k, j, w * f.a.at(k, j));
            }
            for i in 0..out {
                b.set(i, offset + k, f.b.at(i, k));
            }
        }
        offset += f.a.rows;
    }
    (b, a)
}

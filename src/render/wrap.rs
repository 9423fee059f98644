//! Line breaking for the face: where a value's glyphs break into lines that fit a box, and how
//! wide a run of glyphs is. Pure functions of the face font's advances.

use crate::font::FaceFont;

/// Width of a run in points: advances plus character spacing between glyphs.
pub(super) fn run_width(font: &FaceFont, glyphs: &[(u16, char)], size: f32, spacing: f32) -> f32 {
    let adv: f32 = glyphs.iter().map(|(_, c)| font.advance_pt(*c, size)).sum();
    adv + spacing * glyphs.len().saturating_sub(1) as f32
}

/// Characters that must not start a line (closing punctuation), GB/T 15834 style.
fn no_line_start(c: char) -> bool {
    matches!(
        c,
        '，' | '。'
            | '、'
            | '；'
            | '：'
            | '？'
            | '！'
            | '）'
            | '】'
            | '》'
            | '」'
            | '』'
            | '”'
            | '’'
            | ','
            | '.'
            | ';'
            | ':'
            | ')'
            | ']'
            | '%'
    )
}

/// Break glyphs into lines no wider than `width`: anywhere between CJK characters, at spaces or
/// between ASCII words otherwise, never putting closing punctuation at a line start. `None` when
/// a single glyph is wider than the box.
pub(super) fn wrap(
    font: &FaceFont,
    glyphs: &[(u16, char)],
    size: f32,
    width: f32,
) -> Option<Vec<Vec<(u16, char)>>> {
    let mut lines: Vec<Vec<(u16, char)>> = Vec::new();
    let mut line: Vec<(u16, char)> = Vec::new();
    let mut line_w = 0.0_f32;
    for &(gid, c) in glyphs {
        let adv = font.advance_pt(c, size);
        if adv > width {
            return None;
        }
        if line_w + adv > width && !line.is_empty() {
            // Find a break: move a trailing ASCII word, or the last CJK char before closing
            // punctuation, to the next line.
            let mut carry: Vec<(u16, char)> = Vec::new();
            if c.is_ascii_alphanumeric() {
                let word_start =
                    line.iter().rposition(|(_, p)| !p.is_ascii_alphanumeric()).map_or(0, |i| i + 1);
                if word_start > 0 {
                    carry = line.split_off(word_start);
                }
            } else if no_line_start(c) {
                // Carry the last character that may start a line, with the closing punctuation
                // after it (`…食品）` + `，` → `品），`).
                let mut k = line.len().saturating_sub(1);
                while k > 0 && line.get(k).is_some_and(|(_, p)| no_line_start(*p)) {
                    k -= 1;
                }
                if k > 0 {
                    carry = line.split_off(k);
                }
            }
            while line.last().is_some_and(|(_, p)| *p == ' ') {
                line.pop();
            }
            lines.push(std::mem::take(&mut line));
            line_w = carry.iter().map(|(_, p)| font.advance_pt(*p, size)).sum();
            line = carry;
            if c == ' ' && line.is_empty() {
                continue;
            }
        }
        line.push((gid, c));
        line_w += adv;
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_lines_inside_the_width() {
        let Ok(font) = FaceFont::locate(None) else {
            return;
        };
        let text = "预包装食品销售（含冷藏冷冻食品），散装食品销售（不含冷藏冷冻食品），热食类食品制售，ABC123 coffee";
        let glyphs: Vec<(u16, char)> =
            text.chars().map(|c| (font.glyph(c).map(|g| g.gid).unwrap(), c)).collect();
        for width in (60..240).step_by(3) {
            let width = width as f32;
            let lines = wrap(&font, &glyphs, 10.0, width).unwrap();
            assert!(lines.len() > 1);
            let joined: String = lines.iter().flatten().map(|(_, c)| *c).collect();
            assert_eq!(joined.replace(' ', ""), text.replace(' ', ""));
            for line in &lines {
                assert!(run_width(&font, line, 10.0, 0.0) <= width + 0.01);
                let first = line.first().map(|(_, c)| *c).unwrap_or('x');
                assert!(!no_line_start(first), "width {width}: line starts with {first}");
            }
        }
    }
}

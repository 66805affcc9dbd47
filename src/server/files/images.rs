//! Images: which types a browser may show inline from this server, their dimensions (from the
//! first bytes), and a preview at most `PREVIEW_SIDE` px on its longer side.

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

/// The longer side of a preview, in pixels.
pub const PREVIEW_SIDE: u32 = 320;

/// Images larger than this are not decoded for a preview (their dimensions are still read).
pub const PREVIEW_MAX_BYTES: i64 = 32 * 1024 * 1024;

/// Raster types a browser shows and never runs: these alone are served inline. (SVG is an
/// image that can carry script: it is always a download.)
pub fn shown_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

fn format_of(content_type: &str) -> Option<ImageFormat> {
    Some(match content_type {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        _ => return None,
    })
}

/// Width and height of an image of `content_type` from its first bytes, if they hold them.
pub fn dimensions(content_type: &str, head: &[u8]) -> Option<(i32, i32)> {
    let format = format_of(content_type)?;
    let (w, h) = ImageReader::with_format(Cursor::new(head), format)
        .into_dimensions()
        .ok()?;
    Some((i32::try_from(w).ok()?, i32::try_from(h).ok()?))
}

/// A preview of an image of `content_type`: PNG when it has transparency, else JPEG. None for an
/// image that cannot be decoded within bounded memory. Blocking: run it off the async workers.
pub fn preview(content_type: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let format = format_of(content_type)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().ok()?;
    let small = if image.width() > PREVIEW_SIDE || image.height() > PREVIEW_SIDE {
        image.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE)
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    if small.color().has_alpha() {
        small.write_to(&mut out, ImageFormat::Png).ok()?;
    } else {
        let rgb = small.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&rgb)
            .ok()?;
    }
    Some(out.into_inner())
}

/// The type of a preview made by `preview`, from its first bytes.
pub fn preview_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn dimensions_come_from_the_header() {
        let bytes = png(1000, 400);
        assert_eq!(dimensions("image/png", &bytes[..64]), Some((1000, 400)));
        assert_eq!(dimensions("image/svg+xml", &bytes), None);
    }

    #[test]
    fn a_preview_fits_in_320_px_and_keeps_the_shape() {
        let small = preview("image/png", &png(1000, 400)).unwrap();
        assert_eq!(preview_type(&small), "image/jpeg");
        let (w, h) = ImageReader::new(Cursor::new(&small))
            .with_guessed_format()
            .unwrap()
            .into_dimensions()
            .unwrap();
        assert_eq!((w, h), (320, 128));
        assert!(preview("image/png", b"not an image").is_none());
    }
}

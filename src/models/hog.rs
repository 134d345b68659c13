//! placeholder
use crate::data::Image;
pub struct HogParams { pub cell: usize, pub block: usize, pub bins: usize }
impl HogParams { pub fn validate(&self, _w: usize, _h: usize) -> Result<(), String> { Ok(()) } }
pub fn hog(_img: &Image, _p: &HogParams) -> Vec<f32> { vec![] }

//! `glue_field_names(x)`: `x` with its struct fields named as Glue names columns, in their
//! order. A target's query may build structs whose fields have capitals or spaces
//! (`named_struct('userId', …)`); the table's type names them `userid`, and DataFusion's cast
//! of structs, which matches fields by name, refuses the rename. Arrow's cast takes fields in
//! their order when no name matches.

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::schema::names::with_glue_field_names;

pub fn glue_field_names() -> ScalarUDF {
    ScalarUDF::new_from_impl(GlueFieldNames::new())
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GlueFieldNames {
    signature: Signature,
}

impl GlueFieldNames {
    pub fn new() -> Self {
        GlueFieldNames { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for GlueFieldNames {
    fn name(&self) -> &str {
        "glue_field_names"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [one] => Ok(with_glue_field_names(one)),
            _ => exec_err!("glue_field_names takes one value"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else { return exec_err!("glue_field_names takes one value") };
        let to = args.return_field.data_type();
        Ok(match value {
            ColumnarValue::Array(array) => ColumnarValue::Array(cast(array, to)?),
            ColumnarValue::Scalar(scalar) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&cast(&scalar.to_array()?, to)?, 0)?)
            }
        })
    }
}

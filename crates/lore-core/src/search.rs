//! How a search ranks, as types: the service, agents and MCP pass these, and only the HTTP and
//! configuration edges read them from strings.

use std::str::FromStr;

use crate::error::{Code, Error};

/// By words (BM25 over the segmented text), by meaning (the query's embedding against the
/// chunks'), or both lists fused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    Fulltext,
    Vector,
    #[default]
    Hybrid,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Fulltext => "fulltext",
            SearchMode::Vector => "vector",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

impl FromStr for SearchMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "fulltext" => Ok(SearchMode::Fulltext),
            "vector" => Ok(SearchMode::Vector),
            "hybrid" => Ok(SearchMode::Hybrid),
            other => Err(Error::new(
                Code::ValidationFailed,
                format!("unknown mode '{other}'; expected fulltext, vector or hybrid"),
            )),
        }
    }
}

/// How hybrid search merges its two lists: by each list's scores scaled to 0..1 and summed by
/// weight (the default: it keeps the margins that ranks lose, and scored higher than rank fusion
/// on both shared sets, SciFact and CMRC 2018), or by rank (reciprocal rank fusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fusion {
    Rrf,
    #[default]
    Weighted,
}

impl FromStr for Fusion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "rrf" => Ok(Fusion::Rrf),
            "weighted" => Ok(Fusion::Weighted),
            other => {
                Err(Error::new(Code::ValidationFailed, format!("unknown fusion '{other}'; expected rrf or weighted")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_fusions_read_their_names_and_refuse_others() {
        for mode in [SearchMode::Fulltext, SearchMode::Vector, SearchMode::Hybrid] {
            assert_eq!(mode.as_str().parse::<SearchMode>().expect("mode"), mode);
        }
        let e = "语义".parse::<SearchMode>().expect_err("unknown");
        assert_eq!(e.code, Code::ValidationFailed);
        assert!(e.message.contains("语义"), "{}", e.message);
        assert_eq!("weighted".parse::<Fusion>().expect("fusion"), Fusion::Weighted);
        assert_eq!("rrf".parse::<Fusion>().expect("fusion"), Fusion::Rrf);
        assert!("max".parse::<Fusion>().is_err());
    }
}

//! The directory: departments (职能部门) requests are referred to, and the grid tree
//! district (区) → street (街道) → community (社区) → grid (网格) → micro-grid (微网格).
//!
//! Reference data parsed from `deploy/policy/directory.toml` (a string: no I/O here). Codes are
//! the deployment's own identifiers; the catalogue's department codes must exist here.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use schemas::GridPath;

use crate::policy::LoadError;

/// The built-in sample directory (one district, three streets).
pub const BUILTIN_DIRECTORY: &str = include_str!("../../../deploy/policy/directory.toml");

/// The directory file as written on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    /// Version of this file.
    pub version: String,
    /// Departments and other handling units.
    pub departments: Vec<DepartmentFile>,
    /// The district the tree belongs to.
    pub district: DistrictFile,
    /// Streets (街道) of the district.
    pub streets: Vec<StreetFile>,
}

/// A department or other handling unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentFile {
    /// Code used in referrals, actors' units and the catalogue.
    pub code: String,
    /// Display name (Chinese and English).
    pub name: String,
    /// What kind of unit it is.
    pub kind: DepartmentKind,
}

/// Kinds of handling unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DepartmentKind {
    /// A government functional department (职能部门).
    Government,
    /// A public institution (事业单位), e.g. a registration centre.
    PublicInstitution,
    /// A utility (water, power, gas, heat): serves 24/7.
    Utility,
    /// A street office (街道办事处) or its sections.
    StreetOffice,
    /// A company, e.g. a property-management company (物业).
    Enterprise,
    /// A people's organisation (人民团体), e.g. the disabled persons' federation.
    PeoplesOrganisation,
}

impl DepartmentKind {
    /// Every kind.
    pub const ALL: [DepartmentKind; 6] = [
        DepartmentKind::Government,
        DepartmentKind::PublicInstitution,
        DepartmentKind::Utility,
        DepartmentKind::StreetOffice,
        DepartmentKind::Enterprise,
        DepartmentKind::PeoplesOrganisation,
    ];

    /// The tier a unit of this kind is assessed and ranked within (分类考核): `district_department`
    /// (functional departments, public institutions, people's organisations), `street_town`
    /// (street offices) or `public_service` (utilities and companies serving the public).
    pub fn assessment_tier(self) -> &'static str {
        match self {
            DepartmentKind::Government
            | DepartmentKind::PublicInstitution
            | DepartmentKind::PeoplesOrganisation => "district_department",
            DepartmentKind::StreetOffice => "street_town",
            DepartmentKind::Utility | DepartmentKind::Enterprise => "public_service",
        }
    }
}

/// The district at the root of the grid tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistrictFile {
    /// District code.
    pub code: String,
    /// District name.
    pub name: String,
}

/// A street (街道).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreetFile {
    /// Street code (a [`GridPath::street`]).
    pub code: String,
    /// Street name.
    pub name: String,
    /// Its communities.
    pub communities: Vec<CommunityFile>,
}

/// A community (社区).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunityFile {
    /// Community code (a [`GridPath::community`]).
    pub code: String,
    /// Community name.
    pub name: String,
    /// Its base grids.
    pub grids: Vec<GridFile>,
}

/// A base grid (基础网格).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridFile {
    /// Grid code (a [`GridPath::grid`]).
    pub code: String,
    /// Households in the grid, for reference.
    #[serde(default)]
    pub households: Option<u32>,
    /// Micro-grid (微网格) codes.
    #[serde(default)]
    pub micro_grids: Vec<String>,
}

/// Departments and the grid tree, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    version: String,
    district: String,
    departments: BTreeMap<String, DepartmentKind>,
    /// (street, community, grid) → micro-grids.
    grids: BTreeMap<(String, String, String), BTreeSet<String>>,
}

impl Directory {
    /// The built-in sample directory ([`BUILTIN_DIRECTORY`]).
    pub fn builtin() -> Directory {
        Directory::parse("directory.toml", BUILTIN_DIRECTORY)
            .expect("the built-in directory is valid (checked by tests)")
    }

    /// Parses and validates a directory file; `name` labels errors.
    pub fn parse(name: &str, text: &str) -> Result<Directory, LoadError> {
        let file: DirectoryFile = toml::from_str(text).map_err(|e| LoadError::syntax(name, &e))?;
        let invalid = |at: String, field: &str, reason: &str| {
            LoadError::invalid(name, &at, field, reason.into())
        };
        if file.version.trim().is_empty() {
            return Err(invalid("directory".into(), "version", "must not be empty"));
        }
        let mut departments = BTreeMap::new();
        for (idx, department) in file.departments.iter().enumerate() {
            let at = format!("departments[{idx}]");
            if department.code.trim().is_empty() {
                return Err(invalid(at, "code", "must not be empty"));
            }
            if departments
                .insert(department.code.clone(), department.kind)
                .is_some()
            {
                return Err(invalid(
                    format!("department \"{}\"", department.code),
                    "code",
                    "duplicate code",
                ));
            }
        }
        let mut codes = BTreeSet::new();
        let mut grids = BTreeMap::new();
        for street in &file.streets {
            let at = format!("street \"{}\"", street.code);
            check_code(&mut codes, &street.code)
                .map_err(|reason| invalid(at.clone(), "code", reason))?;
            for community in &street.communities {
                let at = format!("{at} / community \"{}\"", community.code);
                check_code(&mut codes, &community.code)
                    .map_err(|reason| invalid(at.clone(), "code", reason))?;
                for grid in &community.grids {
                    let at = format!("{at} / grid \"{}\"", grid.code);
                    check_code(&mut codes, &grid.code)
                        .map_err(|reason| invalid(at.clone(), "code", reason))?;
                    let mut micro = BTreeSet::new();
                    for code in &grid.micro_grids {
                        check_code(&mut codes, code)
                            .map_err(|reason| invalid(at.clone(), "micro_grids", reason))?;
                        micro.insert(code.clone());
                    }
                    let key = (
                        street.code.clone(),
                        community.code.clone(),
                        grid.code.clone(),
                    );
                    grids.insert(key, micro);
                }
            }
        }
        Ok(Directory {
            version: file.version,
            district: file.district.code,
            departments,
            grids,
        })
    }

    /// Version of the directory file.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The district code at the root of the tree.
    pub fn district(&self) -> &str {
        &self.district
    }

    /// Whether `code` is a known department.
    pub fn knows_department(&self, code: &str) -> bool {
        self.departments.contains_key(code)
    }

    /// The kind of a known department.
    pub fn department_kind(&self, code: &str) -> Option<DepartmentKind> {
        self.departments.get(code).copied()
    }

    /// Every department code, sorted.
    pub fn department_codes(&self) -> impl Iterator<Item = &str> {
        self.departments.keys().map(String::as_str)
    }

    /// Whether `path` names a grid of the tree: street, community and grid must nest, and a
    /// micro-grid, when given, must belong to that grid.
    pub fn knows_grid(&self, path: &GridPath) -> bool {
        let key = (
            path.street.clone(),
            path.community.clone(),
            path.grid.clone(),
        );
        match (self.grids.get(&key), &path.micro_grid) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(micro), Some(code)) => micro.contains(code),
        }
    }

    /// How deep `code` sits in the grid tree: 1 street, 2 community, 3 grid, 4 micro-grid;
    /// `None` when no node has that code (codes are unique across the tree).
    pub fn area_depth(&self, code: &str) -> Option<u8> {
        self.grids
            .iter()
            .find_map(|((street, community, grid), micro)| {
                if street == code {
                    Some(1)
                } else if community == code {
                    Some(2)
                } else if grid == code {
                    Some(3)
                } else {
                    micro.contains(code).then_some(4)
                }
            })
    }

    /// Every base grid as a path without micro-grid, in order.
    pub fn grids(&self) -> impl Iterator<Item = GridPath> + '_ {
        self.grids.keys().map(|(street, community, grid)| GridPath {
            street: street.clone(),
            community: community.clone(),
            grid: grid.clone(),
            micro_grid: None,
        })
    }
}

fn check_code(seen: &mut BTreeSet<String>, code: &str) -> Result<(), &'static str> {
    if code.trim().is_empty() {
        return Err("must not be empty");
    }
    if !seen.insert(code.to_string()) {
        return Err("duplicate code in the grid tree");
    }
    Ok(())
}

"""Metrics defined over tables users already have (fact tables, the GA4 export): the definition
model, the SQL it compiles to, and the catalog of ready definitions. Pure: no cloud client."""

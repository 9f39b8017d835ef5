"""Binding a parsed query to a logical plan: names resolved, types checked.

The binder walks sqlglot's tree for SELECT / set operations / VALUES and
produces ``LogicalQuery``: a plan whose columns carry unique internal names,
plus the names the user sees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyarrow as pa
from sqlglot import exp

from shoal.catalog.catalog import Catalog
from shoal.catalog.sources import TableSource
from shoal.errors import TypeMismatchError, UnsupportedError, UserError
from shoal.expr.nodes import ColumnRef, Expr, Literal, conjoin
from shoal.logical.plan import (
    WHOLE_PARTITION,
    Aggregate,
    Filter,
    Join,
    Limit,
    LogicalPlan,
    LogicalQuery,
    Project,
    Scan,
    Sort,
    SortKey,
    UnionAll,
    Values,
    Window,
    WindowCall,
    WindowFunction,
)
from shoal.sql import quantiles
from shoal.sql import typing as t
from shoal.sql.ctes import SharedCtes
from shoal.sql.expressions import AggregateContext, ExpressionBinder, contains_aggregate
from shoal.sql.grouping import GroupingSets, expand_group_by, has_grouping_sets
from shoal.sql.scope import NameGenerator, Scope, ScopeColumn
from shoal.sql.source_text import as_written
from shoal.sql.statements import file_source, looks_like_file
from shoal.sql.subqueries import PlanBuilder, SubqueryBinder, ast_conjuncts
from shoal.sql.unnest import apply_unnests, check_unnest_source, take_unnests, unnest_relation
from shoal.sql.windows import WindowBinder


@dataclass
class BoundRelation:
    """A plan with the scope it exposes to the enclosing query."""

    plan: LogicalPlan
    scope: Scope


class Binder:
    def __init__(self, catalog: Catalog, *, share_ctes: bool = True):
        self.catalog = catalog
        self.names = NameGenerator()
        # CTEs read more than once, bound once (sql/ctes.py); None: bound per reference.
        self.shared_ctes = SharedCtes(self.names) if share_ctes else None
        # Visible common table expressions, innermost WITH last.
        self.ctes: list[dict[str, exp.CTE]] = []
        self._binding_ctes: set[int] = set()

    # ------------------------------------------------------------------ query

    def bind_statement(self, node: exp.Expr) -> LogicalQuery:
        if not isinstance(node, exp.Query | exp.Values):
            raise UnsupportedError(f"statement {node.key.upper()}")
        plan, names = self.bind_query(node, outer=None)
        return LogicalQuery(plan, tuple(names))

    def bind_query(self, node: exp.Expr, outer: Scope | None) -> tuple[LogicalPlan, list[str]]:
        """A query expression: its plan and output column names."""
        with_ = node.args.get("with_") or node.args.get("with")
        if with_ is not None:
            if with_.args.get("recursive"):
                raise UnsupportedError("WITH RECURSIVE")
            self.ctes.append({cte.alias.lower(): cte for cte in with_.expressions})
            if self.shared_ctes is not None:
                self.shared_ctes.count(node, list(with_.expressions))
            try:
                return self._bind_query_body(node, outer)
            finally:
                self.ctes.pop()
        return self._bind_query_body(node, outer)

    def _bind_query_body(
        self, node: exp.Expr, outer: Scope | None
    ) -> tuple[LogicalPlan, list[str]]:
        if isinstance(node, exp.Subquery):
            return self.bind_query(node.this, outer)
        if isinstance(node, exp.Select):
            return self._select(node, outer)
        if isinstance(node, exp.SetOperation):
            return self._set_operation(node, outer)
        if isinstance(node, exp.Values):
            rel, names = self._values(node)
            return rel.plan, names
        raise UnsupportedError(f"query form {node.key.upper()}")

    # ----------------------------------------------------------------- FROM

    def _from(self, node: exp.Select, outer: Scope | None) -> BoundRelation:
        from_ = node.args.get("from_") or node.args.get("from")
        if from_ is None:
            if node.args.get("joins"):
                raise UnsupportedError("JOIN without FROM")
            # SELECT without FROM reads one row with no columns.
            return BoundRelation(Values(((),), pa.schema([])), Scope([], outer))
        rel = self._relation(from_.this, outer)
        for join in node.args.get("joins") or []:
            rel = self._join(rel, join, outer)
        return rel

    def _join(self, left: BoundRelation, join: exp.Join, outer: Scope | None) -> BoundRelation:
        if join.args.get("method") or join.args.get("global_"):
            raise UnsupportedError(f"{join.args.get('method') or 'GLOBAL'} JOIN")
        side = (join.side or "").upper()
        kind = (join.kind or "").upper()
        if isinstance(join.this, exp.Unnest):
            return self._lateral_unnest(left, join, side or kind, outer)
        right = self._relation(join.this, outer)
        scope = Scope(left.scope.columns + right.scope.columns, outer)
        if kind in ("SEMI", "ANTI"):
            raise UnsupportedError(f"{kind} JOIN syntax")
        jkind = {"LEFT": "left", "RIGHT": "right", "FULL": "full"}.get(side, "inner")
        if kind == "CROSS":
            jkind = "cross"
        on = join.args.get("on")
        using = join.args.get("using")
        condition: Expr | None = None
        left_plan = left.plan
        if on is not None:
            # Uncorrelated scalar subqueries in ON join onto the left input first.
            builder = PlanBuilder(left.plan)
            binder = ExpressionBinder(scope, subquery=SubqueryBinder(self, builder).bind)
            condition = binder.bind(on)
            left_plan = builder.plan
            _require_boolean(condition, "JOIN ... ON")
        elif using:
            if jkind == "full":
                raise UnsupportedError("FULL JOIN ... USING (write the ON condition and COALESCE)")
            parts = []
            names = {ident.name.lower() for ident in using}
            for ident in using:
                lref = Scope(left.scope.columns).resolve(ident.name)
                rref = Scope(right.scope.columns).resolve(ident.name)
                parts.append(t.comparison("equal", lref, rref))
            condition = conjoin(parts)
            # One key column remains visible: the preserved side's (the left one, or
            # the right one for RIGHT JOIN), as in SELECT * ... USING in other engines.
            hide_left = jkind == "right"
            scope = Scope(
                [
                    replace(c, merged_away=True)
                    if c.name.lower() in names and (c in left.scope.columns) == hide_left
                    else c
                    for c in scope.columns
                ],
                outer,
            )
        elif jkind in ("left", "right", "full"):
            raise UserError(f"{side} JOIN needs an ON or USING condition")
        plan = Join(
            left_plan,
            right.plan,
            jkind if condition is not None or jkind != "inner" else "cross",
            condition,
        )
        return BoundRelation(plan, scope)

    def _lateral_unnest(
        self, left: BoundRelation, join: exp.Join, kind: str, outer: Scope | None
    ) -> BoundRelation:
        """``FROM t, unnest(t.l)``: ``t``'s rows, each once per element of its list."""
        if kind not in ("", "CROSS", "INNER") or join.args.get("using"):
            raise UnsupportedError(
                f"{kind} JOIN {as_written(join.this)} (only the inner form: FROM t, unnest(...))"
            )
        on = join.args.get("on")
        if on is not None and not (isinstance(on, exp.Boolean) and on.this):
            raise UnsupportedError(f"JOIN {as_written(join.this)} ON a condition (filter in WHERE)")
        source = check_unnest_source(join.this)
        bound = ExpressionBinder(left.scope).bind(source)
        plan, column = unnest_relation(left.plan, join.this, bound, self.names)
        return BoundRelation(plan, Scope(left.scope.columns + [column], outer))

    def _relation(self, node: exp.Expr, outer: Scope | None) -> BoundRelation:
        if isinstance(node, exp.Unnest):
            # FROM unnest([...]): over one row with no columns.
            bound = ExpressionBinder(Scope([], outer)).bind(check_unnest_source(node))
            one_row = Values(((),), pa.schema([]))
            plan, column = unnest_relation(one_row, node, bound, self.names)
            return BoundRelation(plan, Scope([column], outer))
        if isinstance(node, exp.Table | exp.Subquery):
            for arg, construct in (("sample", "TABLESAMPLE"), ("pivots", "PIVOT / UNPIVOT")):
                if node.args.get(arg):
                    raise UnsupportedError(construct)
        if isinstance(node, exp.Table):
            if node.args.get("db"):
                raise UnsupportedError(f"qualified table name {node.sql()}")
            if isinstance(node.this, exp.Func | exp.Anonymous):
                # read_parquet('...') / read_csv('...')
                return self._scan(file_source(node.this), node.alias or "", outer)
            cte = self._find_cte(node.name)
            if cte is not None:
                if id(cte) in self._binding_ctes:
                    raise UserError(f"common table expression '{node.name}' refers to itself")
                shared = None
                if self.shared_ctes is not None:
                    shared = self.shared_ctes.read(cte, lambda: self._bind_cte(cte))
                plan, out_names = shared if shared is not None else self._bind_cte(cte)
                out_names = _alias_columns(cte, out_names)
                qualifier = (node.alias or node.name).lower()
                return BoundRelation(plan, Scope(_scope_of(plan, out_names, qualifier), outer))
            view = self.catalog.view(node.name)
            if view is not None:
                return self._view(node, view, outer)
            if node.this.args.get("quoted") and looks_like_file(node.name):
                if node.name.lower() not in {n.lower() for n in self.catalog.names()}:
                    return self._scan(file_source(node.this), node.alias or "", outer)
            source = self.catalog.get(node.name)
            return self._scan(source, (node.alias or node.name).lower(), outer)
        if isinstance(node, exp.Subquery):
            plan, out_names = self.bind_query(node.this, outer)
            sub_alias = node.alias.lower() if node.alias else None
            out_names = _alias_columns(node, out_names)
            return BoundRelation(plan, Scope(_scope_of(plan, out_names, sub_alias), outer))
        if isinstance(node, exp.Values):
            rel, _ = self._values(node)
            return BoundRelation(rel.plan, Scope(rel.scope.columns, outer))
        raise UnsupportedError(f"FROM {node.key.upper()}")

    def _bind_cte(self, cte: exp.CTE) -> tuple[LogicalPlan, list[str]]:
        self._binding_ctes.add(id(cte))
        try:
            return self.bind_query(cte.this, None)
        finally:
            self._binding_ctes.discard(id(cte))

    def _scan(self, source: TableSource, alias: str, outer: Scope | None) -> BoundRelation:
        columns = tuple(f.name for f in source.schema)
        names = tuple(self.names.fresh(c) for c in columns)
        scan = Scan(source.name, source, columns, names)
        scope = [
            ScopeColumn(alias.lower() or None, c, n, f.type)
            for c, n, f in zip(columns, names, source.schema, strict=True)
        ]
        return BoundRelation(scan, Scope(scope, outer))

    def _view(self, node: exp.Table, query: exp.Expr, outer: Scope | None) -> BoundRelation:
        """A view is bound where it is used, in a scope of its own (no outer CTEs)."""
        if id(query) in self._binding_ctes:
            raise UserError(f"view '{node.name}' refers to itself")
        self._binding_ctes.add(id(query))
        saved, self.ctes = self.ctes, []
        try:
            plan, out_names = self.bind_query(query, None)
        finally:
            self.ctes = saved
            self._binding_ctes.discard(id(query))
        qualifier = (node.alias or node.name).lower()
        return BoundRelation(plan, Scope(_scope_of(plan, out_names, qualifier), outer))

    def _find_cte(self, name: str) -> exp.CTE | None:
        for frame in reversed(self.ctes):
            cte = frame.get(name.lower())
            if cte is not None:
                return cte
        return None

    def _values(self, node: exp.Values) -> tuple[BoundRelation, list[str]]:
        binder = ExpressionBinder(Scope([]))
        rows: list[list[Expr]] = []
        for tup in node.expressions:
            items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            row = [binder.bind(i) for i in items]
            if not all(isinstance(v, Literal) for v in row):
                raise UnsupportedError("non-constant expressions in VALUES")
            if rows and len(row) != len(rows[0]):
                raise UserError("VALUES rows have different numbers of columns")
            rows.append(row)
        width = len(rows[0])
        types: list[pa.DataType] = []
        for i in range(width):
            _, typ = t.unify([r[i] for r in rows], "VALUES")
            types.append(typ)
        coerced = tuple(
            tuple(t.coerce(r[i], types[i]).value for i in range(width))  # type: ignore[attr-defined]
            for r in rows
        )
        user_names = [f"col{i}" for i in range(width)]
        alias = node.args.get("alias")
        qualifier = None
        if alias is not None:
            qualifier = alias.name.lower() if alias.name else None
            cols = [c.name for c in alias.columns]
            user_names[: len(cols)] = cols
        internal = [self.names.fresh(n) for n in user_names]
        schema = pa.schema([pa.field(n, typ) for n, typ in zip(internal, types, strict=True)])
        plan = Values(coerced, schema)
        scope = [
            ScopeColumn(qualifier, u, n, typ)
            for u, n, typ in zip(user_names, internal, types, strict=True)
        ]
        return BoundRelation(plan, Scope(scope)), user_names

    # --------------------------------------------------------------- SELECT

    def _select(self, node: exp.Select, outer: Scope | None) -> tuple[LogicalPlan, list[str]]:
        for unsupported in ("laterals", "pivots"):
            if node.args.get(unsupported):
                raise UnsupportedError(unsupported.upper())
        builder, scope = self.from_where(node, outer)
        subqueries = SubqueryBinder(self, builder)
        windows = WindowBinder.for_select(node, self.names)
        binder = ExpressionBinder(scope, subquery=subqueries.bind, window=windows.bind)
        qualify = node.args.get("qualify")

        # Expand the select list (stars) into (user name, sqlglot node) pairs.
        items = self._select_items(node, scope)
        items, unnest_at = take_unnests(items)

        group = node.args.get("group")
        having = node.args.get("having")
        order = node.args.get("order")
        needs_agg = (
            group is not None
            or having is not None
            or any(contains_aggregate(n) for _, n in items)
            or (order is not None and any(contains_aggregate(o.this) for o in order.expressions))
        )
        if needs_agg:
            # Scalar subqueries in SELECT / HAVING join above the aggregation.
            builder.defer_joins()
            agg = AggregateContext(self.names)
            grouping = GroupingSets(self.names)
            agg.grouping = lambda n, b: grouping.bind_grouping(n, b, agg)
            key_nodes = list(group.expressions) if group is not None else []
            if has_grouping_sets(group):
                assert group is not None
                key_nodes, grouping.sets = expand_group_by(group)
            if group is not None and group.args.get("all"):
                # GROUP BY ALL: every select item without an aggregate is a key.
                key_nodes = [n for _, n in items if not contains_aggregate(n)]
            for key_node in key_nodes:
                key_node = _group_key_node(key_node, items, scope)
                key = binder.bind(key_node)
                if pa.types.is_nested(key.type):
                    raise UnsupportedError(
                        f"GROUP BY a list value (or an unnest alias): {key_node.sql('duckdb')}"
                    )
                ref = agg.key_ref(key)
                if ref is None:
                    label = key_node.name if isinstance(key_node, exp.Column) else "key"
                    agg.keys.append((self.names.fresh(label), key))
                    grouping.key_positions.append(len(agg.keys) - 1)
                else:
                    grouping.key_positions.append([n for n, _ in agg.keys].index(ref.name))
            post = ExpressionBinder(scope, agg, subquery=subqueries.bind, window=windows.bind)
            bound_items = [(name, post.bind(n)) for name, n in items]
            having_pred = (
                post.bind(_with_select_aliases(having.this, items, scope))
                if having is not None
                else None
            )
            order_keys = self._order_keys(order, items, bound_items, post)
            on_keys = self._order_keys(_distinct_on(node), items, bound_items, post)
            qualify_pred = (
                post.bind(_with_select_aliases(qualify.this, items, scope))
                if qualify is not None
                else None
            )
            if agg.quantiles:
                if grouping.sets:
                    raise UnsupportedError("median / quantiles with GROUPING SETS / ROLLUP / CUBE")
                builder.plan = quantiles.apply(builder.plan, agg.keys, agg.quantiles, self.names)
            if grouping.sets:
                builder.plan = grouping.aggregate(builder.plan, agg)
            else:
                builder.plan = Aggregate(builder.plan, tuple(agg.keys), tuple(agg.aggregates))
            plan = builder.apply_deferred()
            if having_pred is not None:
                _require_boolean(having_pred, "HAVING")
                plan = Filter(plan, having_pred)
        else:
            bound_items = [(name, binder.bind(n)) for name, n in items]
            order_keys = self._order_keys(order, items, bound_items, binder)
            on_keys = self._order_keys(_distinct_on(node), items, bound_items, binder)
            qualify_pred = (
                binder.bind(_with_select_aliases(qualify.this, items, scope))
                if qualify is not None
                else None
            )
            plan = builder.plan
        # Windows see the rows after WHERE / GROUP BY / HAVING; QUALIFY filters on them.
        plan = windows.apply(plan)
        if qualify_pred is not None:
            _require_boolean(qualify_pred, "QUALIFY")
            plan = Filter(plan, qualify_pred)

        # Project the select list plus any ORDER BY expressions it lacks.
        exprs: list[tuple[str, Expr]] = [(self.names.fresh(name), e) for name, e in bound_items]
        visible = len(exprs)
        sort_keys: list[SortKey] = []
        on_columns: list[str] = []
        for okey in [*order_keys, *on_keys]:
            target = _find_output(okey.expr, bound_items, exprs)
            if target is None:
                if node.args.get("distinct") and not on_keys:
                    raise UserError(
                        "for SELECT DISTINCT, ORDER BY expressions must appear in the select list"
                    )
                hidden = self.names.fresh("sort_key")
                exprs.append((hidden, okey.expr))
                target = ColumnRef(hidden, okey.expr.type)
            if len(sort_keys) < len(order_keys):
                sort_keys.append(SortKey(target, okey.ascending, okey.nulls_first))
            else:
                on_columns.append(target.name)
        plan = apply_unnests(Project(plan, tuple(exprs)), exprs, unnest_at)
        if on_keys:
            # DISTINCT ON (keys): the first row of each key group in ORDER BY order.
            first = self.names.fresh("first_row")
            call = WindowCall(WindowFunction.ROW_NUMBER, None, pa.int64(), WHOLE_PARTITION)
            plan = Window(
                plan, tuple(dict.fromkeys(on_columns)), tuple(sort_keys), ((first, call),)
            )
            plan = Filter(
                plan, t.comparison("equal", ColumnRef(first, pa.int64()), Literal(1, pa.int64()))
            )
            plan = Project(plan, tuple((n, ColumnRef(n, e.type)) for n, e in exprs))
        elif node.args.get("distinct"):
            plan = Aggregate(plan, tuple((n, ColumnRef(n, e.type)) for n, e in exprs), ())
        plan = self._order_limit(node, plan, sort_keys)
        if len(exprs) > visible:
            plan = Project(plan, tuple((n, ColumnRef(n, e.type)) for n, e in exprs[:visible]))
        return plan, [name for name, _ in items]

    def from_where(self, node: exp.Select, outer: Scope | None) -> tuple[PlanBuilder, Scope]:
        """FROM and WHERE: EXISTS / IN subqueries become semi / anti joins."""
        rel = self._from(node, outer)
        builder = PlanBuilder(rel.plan)
        where = node.args.get("where")
        if where is None:
            return builder, rel.scope
        if contains_aggregate(where.this):
            raise UserError("aggregate functions are not allowed in WHERE")
        subqueries = SubqueryBinder(self, builder)
        binder = ExpressionBinder(rel.scope, subquery=subqueries.bind)
        predicates: list[Expr] = []
        for conj in ast_conjuncts(where.this):
            if subqueries.try_semi_join(conj, rel.scope):
                continue
            predicate = binder.bind(conj)
            _require_boolean(predicate, "WHERE")
            predicates.append(predicate)
        condition = conjoin(predicates)
        if condition is not None:
            builder.plan = Filter(builder.plan, condition)
        return builder, rel.scope

    def _select_items(self, node: exp.Select, scope: Scope) -> list[tuple[str, exp.Expr]]:
        items: list[tuple[str, exp.Expr]] = []
        for e in node.expressions:
            if isinstance(e, exp.Star):
                items += [(c.name, _column_node(c)) for c in scope.columns if not c.merged_away]
            elif isinstance(e, exp.Column) and isinstance(e.this, exp.Star):
                items += [(c.name, _column_node(c)) for c in scope.qualified(e.table)]
            elif isinstance(e, exp.Alias):
                items.append((e.alias, e.this))
            else:
                items.append((_default_name(e), e))
        if not items:
            raise UserError("SELECT list is empty")
        return items

    def _order_keys(
        self,
        order: exp.Order | None,
        items: list[tuple[str, exp.Expr]],
        bound_items: list[tuple[str, Expr]],
        binder: ExpressionBinder,
    ) -> list[SortKey]:
        if order is None:
            return []
        keys = []
        for o in order.expressions:
            node = o.this
            expr: Expr
            if isinstance(node, exp.Literal) and not node.is_string:
                pos = _position(node, "ORDER BY")
                if not 1 <= pos <= len(bound_items):
                    raise UserError(f"ORDER BY position {pos} is not in the select list")
                expr = bound_items[pos - 1][1]
            elif (
                isinstance(node, exp.Column)
                and not node.table
                and _alias_index(node.name, items) is not None
            ):
                expr = bound_items[_alias_index(node.name, items)][1]  # type: ignore[index]
            else:
                expr = binder.bind(node)
            desc = bool(o.args.get("desc"))
            nulls_first = bool(o.args.get("nulls_first"))
            keys.append(SortKey(expr, not desc, nulls_first))
        return keys

    def _order_limit(
        self, node: exp.Expr, plan: LogicalPlan, sort_keys: list[SortKey]
    ) -> LogicalPlan:
        if sort_keys:
            plan = Sort(plan, tuple(sort_keys))
        limit = _int_clause(node.args.get("limit"), "LIMIT")
        offset = _int_clause(node.args.get("offset"), "OFFSET")
        if limit is not None or offset:
            plan = Limit(plan, limit, offset or 0)
        return plan

    # ------------------------------------------------------- set operations

    def _set_operation(
        self, node: exp.SetOperation, outer: Scope | None
    ) -> tuple[LogicalPlan, list[str]]:
        distinct = bool(node.args.get("distinct"))
        left, left_names = self.bind_query(node.left, outer)
        right, right_names = self.bind_query(node.right, outer)
        if len(left.schema) != len(right.schema):
            raise UserError(f"UNION inputs have {len(left.schema)} and {len(right.schema)} columns")
        types = [
            t.unify([ColumnRef(lf.name, lf.type), ColumnRef(rf.name, rf.type)], "UNION")[1]
            for lf, rf in zip(left.schema, right.schema, strict=True)
        ]
        names = [self.names.fresh(n) for n in left_names]
        inputs = tuple(
            Project(
                side,
                tuple(
                    (n, t.coerce(ColumnRef(f.name, f.type), typ))
                    for n, f, typ in zip(names, side.schema, types, strict=True)
                ),
            )
            for side in (left, right)
        )
        plan: LogicalPlan
        if isinstance(node, exp.Union):
            plan = UnionAll(inputs)
            if distinct:
                plan = _distinct(plan)
        else:
            # INTERSECT / EXCEPT: distinct left rows with / without an equal right row,
            # where NULL equals NULL (set semantics).
            left_in, right_in = inputs
            right_names = [self.names.fresh(n) for n in left_names]
            right_in = Project(
                right_in,
                tuple(
                    (rn, ColumnRef(n, typ))
                    for rn, n, typ in zip(right_names, names, types, strict=True)
                ),
            )
            cond = conjoin(
                [
                    t.comparison("equal", ColumnRef(n, typ), ColumnRef(rn, typ))
                    for n, rn, typ in zip(names, right_names, types, strict=True)
                ]
            )
            kind = "semi" if isinstance(node, exp.Intersect) else "anti"
            if distinct:
                plan = Join(_distinct(left_in), right_in, kind, cond, null_equal=True)
            else:
                # INTERSECT ALL / EXCEPT ALL: the k-th copy of a row on the left meets the
                # k-th copy on the right (copies numbered among equal rows), so a row comes
                # out min(l, r) / max(l - r, 0) times.
                left_n, right_n = self.names.fresh("copy"), self.names.fresh("copy")
                numbered = [
                    _number_copies(side, copy_name)
                    for side, copy_name in ((left_in, left_n), (right_in, right_n))
                ]
                same_copy = t.comparison(
                    "equal", ColumnRef(left_n, pa.int64()), ColumnRef(right_n, pa.int64())
                )
                cond = conjoin([c for c in (cond, same_copy) if c is not None])
                joined = Join(numbered[0], numbered[1], kind, cond, null_equal=True)
                plan = Project(
                    joined,
                    tuple((n, ColumnRef(n, typ)) for n, typ in zip(names, types, strict=True)),
                )
        # ORDER BY / LIMIT on the whole set operation.
        order = node.args.get("order")
        sort_keys: list[SortKey] = []
        if order is not None:
            scope = Scope(_scope_of(plan, left_names, None))
            items: list[tuple[str, exp.Expr]] = [
                (n, _column_node(c)) for n, c in zip(left_names, scope.columns, strict=True)
            ]
            bound_items: list[tuple[str, Expr]] = [
                (n, ColumnRef(c.internal, c.type))
                for n, c in zip(left_names, scope.columns, strict=True)
            ]
            sort_keys = self._order_keys(order, items, bound_items, ExpressionBinder(scope))
        plan = self._order_limit(node, plan, sort_keys)
        return plan, left_names


# ------------------------------------------------------------------- helpers


def _distinct_on(node: exp.Select) -> exp.Order | None:
    """DISTINCT ON's keys as an ORDER BY list (bound like ORDER BY keys: positions,
    select-list aliases, expressions)."""
    distinct = node.args.get("distinct")
    on = distinct.args.get("on") if distinct is not None else None
    if on is None:
        return None
    keys = on.expressions if isinstance(on, exp.Tuple) else [on]
    return exp.Order(expressions=[exp.Ordered(this=k.copy()) for k in keys])


def _number_copies(plan: LogicalPlan, name: str) -> LogicalPlan:
    """``plan`` plus ``name``: 1, 2, … over the rows equal in every column."""
    call = WindowCall(WindowFunction.ROW_NUMBER, None, pa.int64(), WHOLE_PARTITION)
    return Window(plan, tuple(f.name for f in plan.schema), (), ((name, call),))


def _distinct(plan: LogicalPlan) -> LogicalPlan:
    return Aggregate(plan, tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema), ())


def _require_boolean(e: Expr, clause: str) -> None:
    if not (pa.types.is_boolean(e.type) or pa.types.is_null(e.type)):
        raise TypeMismatchError(f"{clause} needs a BOOLEAN condition, got {e}")


def _column_node(c: ScopeColumn) -> exp.Column:
    return exp.column(c.name, table=c.qualifier, quoted=True)


def _default_name(e: exp.Expr) -> str:
    if isinstance(e, exp.Column):
        return e.name
    if isinstance(e, exp.Count) and isinstance(e.this, exp.Star):
        return "count_star()"
    return e.sql(dialect="duckdb")


def _alias_index(name: str, items: list[tuple[str, exp.Expr]]) -> int | None:
    for i, (n, _) in enumerate(items):
        if n.lower() == name.lower():
            return i
    return None


def _with_select_aliases(
    node: exp.Expr, items: list[tuple[str, exp.Expr]], scope: Scope
) -> exp.Expr:
    """HAVING may name a select-list alias (as in DuckDB): substitute its expression
    for bare names that are aliases and not columns of the FROM clause."""
    in_scope = {c.name.lower() for c in scope.columns}

    def swap(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and not n.table and n.name.lower() not in in_scope:
            idx = _alias_index(n.name, items)
            if idx is not None:
                return items[idx][1].copy()
        return n

    return node.copy().transform(swap)


def _group_key_node(key: exp.Expr, items: list[tuple[str, exp.Expr]], scope: Scope) -> exp.Expr:
    """GROUP BY 2 and GROUP BY alias refer to the select list (as in DuckDB)."""
    if isinstance(key, exp.Literal) and not key.is_string:
        pos = _position(key, "GROUP BY")
        if not 1 <= pos <= len(items):
            raise UserError(f"GROUP BY position {pos} is not in the select list")
        return items[pos - 1][1]
    if isinstance(key, exp.Column) and not key.table:
        in_scope = any(c.name.lower() == key.name.lower() for c in scope.columns)
        idx = _alias_index(key.name, items)
        if not in_scope and idx is not None:
            return items[idx][1]
    return key


def _find_output(
    e: Expr, bound_items: list[tuple[str, Expr]], exprs: list[tuple[str, Expr]]
) -> ColumnRef | None:
    for (_, bound), (name, projected) in zip(bound_items, exprs, strict=False):
        if bound == e:
            return ColumnRef(name, projected.type)
    return None


def _int_clause(clause: exp.Expr | None, what: str) -> int | None:
    if clause is None:
        return None
    value = clause.args.get("expression") or clause.this
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
        raise UserError(f"{what} must not be negative")
    if isinstance(value, exp.Literal) and not value.is_string:
        n = _position(value, what)
        if n > _MAX_BIGINT:
            raise UserError(f"{what} {n} is out of range for BIGINT")
        return n
    raise UnsupportedError(f"{what} with a non-constant value")


_MAX_BIGINT = (1 << 63) - 1


def _position(node: exp.Literal, what: str) -> int:
    """A non-negative integer constant (a position, a LIMIT), else a UserError."""
    text = str(node.this)
    if not text.isdigit():
        raise UserError(f"{what} needs a whole number, got {text}")
    return int(text)


def _alias_columns(node: exp.Subquery | exp.CTE, names: list[str]) -> list[str]:
    alias = node.args.get("alias")
    if alias is not None and alias.columns:
        cols = [c.name for c in alias.columns]
        if len(cols) > len(names):
            raise UserError(
                f"table alias lists {len(cols)} columns but the subquery has {len(names)}"
            )
        return cols + names[len(cols) :]
    return names


def _scope_of(plan: LogicalPlan, user_names: list[str], qualifier: str | None) -> list[ScopeColumn]:
    return [
        ScopeColumn(qualifier, u, f.name, f.type)
        for u, f in zip(user_names, plan.schema, strict=True)
    ]

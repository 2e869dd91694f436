/*
 * sub.c - the subscription table of a worker (see sub.h).
 *
 * The filters form a trie of topic levels.  Every node but the root sits
 * in one hash table keyed by (parent node, level bytes), so finding a
 * child is O(1) however many siblings it has (thousands of device ids
 * under one level); the '+' and '#' children are in that table too (so
 * the table enumerates every node) but are also reached through two
 * pointers in their parent, because sub_match() asks for them at every
 * level and a pointer is cheaper than a hash.
 *
 * What subscribes to a filter hangs off its node in a leaf, allocated
 * only for nodes that end a filter: the plain local subscribers, the
 * shared groups of that filter, and a bitmap of the worker slots with
 * plain interest.  A node without a leaf and without children is freed,
 * and so are its ancestors that become empty in turn, so a table goes
 * back to its size before a filter was added once it is gone.
 *
 * The subscribers of one filter (or one group) are an array of
 * struct sub_hit, the very type sub_match() returns: a match copies them
 * with one memcpy.  Removing one swaps the last into its place; which
 * position an owner holds is found by a scan while the array is short
 * and, once it has grown past MEMBERS_SCAN_MAX, through an index of the
 * owner's hash, so a disconnect storm on a filter with 100k subscribers
 * costs O(1) per unsubscribe, not O(n).
 *
 * Remote interest is kept twice: in the leaf (plain bitmap) or group
 * (count per slot), which is what matching reads, and in one pointer set
 * per slot of the nodes and groups that slot is interested in, so that
 * sub_clear_remote() costs what that slot announced, not a walk over the
 * whole table.
 *
 * Every function that can fail allocates before it changes anything, or
 * undoes what it created, so ENOMEM leaves the table as it was.
 *
 * Costs: sub_match() does one hash lookup per topic level and per '+'
 * branch taken, plus a copy of what matched, and allocates nothing once
 * its arrays and the walk's stack have grown; adding and removing cost
 * O(levels) and amortised O(1) for the member arrays; sub_clear_remote()
 * is O(what that slot announced); sub_local_filters() walks every node.
 * Memory: a node is 44 bytes plus its level, a leaf 40 (up to 64 worker
 * slots), a subscriber 16 in its filter's array, plus one child table
 * slot per node (8 bytes at a load of 3/8 to 3/4).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hash.h"
#include "sub.h"

/* Longer names or filters cannot come from an MQTT string. */
#define SUB_MAX_LEN		65535

/*
 * Up to this many subscribers of one filter are found by a scan (a few
 * cache lines); past it an owner index is built.  It is dropped again at
 * half this size so that a count hovering around the limit does not
 * build and free it on every change.
 */
#define MEMBERS_SCAN_MAX	16

#define PTRTAB_MIN		8

/* A remote set element with this bit set is a group, not a node. */
#define REMOTE_GROUP_TAG	((uintptr_t)1)

/*
 * Open addressing with linear probing over pointers, NULL being empty;
 * deletion shifts the following entries back instead of leaving
 * tombstones, so probe lengths do not rot under churn.  The user gives
 * the hash of a stored element (for growing and deleting) and probes
 * for its own keys.
 */
struct ptrtab {
	void		**slot;		/* NULL while empty */
	uint32_t	  mask;		/* capacity - 1 */
	uint32_t	  count;
};

typedef uint32_t (*ptrtab_hash_fn)(const void *ctx, const void *elem);

/* The local subscribers of a filter or of a shared group. */
struct sub_members {
	struct sub_hit	*v;
	uint32_t	 n;
	uint32_t	 cap;
	/*
	 * Position + 1, keyed by owner; NULL while a scan is enough, which
	 * is the case of most filters, so it costs them a pointer only.
	 */
	struct ptrtab	*index;
};

struct sub_leaf {
	struct sub_members	 local;		/* plain subscribers */
	struct sub_group	*groups;	/* shared groups */
	uint64_t		 remote[];	/* slots, plain */
};

struct sub_node {
	struct sub_node	*parent;
	struct sub_node	*plus;		/* the '+' child */
	struct sub_node	*pound;		/* the '#' child */
	struct sub_leaf	*leaf;		/* NULL: no filter ends here */
	uint32_t	 hashv;		/* of (parent, level) */
	uint32_t	 nchildren;	/* including plus and pound */
	uint32_t	 len;
	uint8_t		 level[];
};

struct sub_group {
	struct sub_group	*next;		/* on the leaf */
	struct sub_node		*node;
	struct sub_members	 local;
	uint32_t		*remote;	/* members per slot, or NULL */
	uint32_t		 nremote;	/* slots with members */
	uint32_t		 turn;		/* the next member, mod total */
	uint16_t		 nslots;
	uint16_t		 name_len;
	uint32_t		 text_len;
	uint8_t			 text[];	/* "$share/NAME/FILTER" */
};

/* A pending step of sub_match(): a node, and where its next level starts. */
struct match_frame {
	const struct sub_node	*node;
	size_t			 pos;		/* > length: no level left */
};

struct sub_table {
	struct sub_node		*root;
	struct ptrtab		 children;	/* all nodes but root */
	struct ptrtab		*remote;	/* per slot: what it wants */
	uint64_t		 seed;
	unsigned		 nworkers;
	unsigned		 self_slot;
	unsigned		 nwords;	/* of a leaf's remote bitmap */
	size_t			 nlocal;
	struct match_frame	*stack;
	size_t			 stack_cap;
	/*
	 * sub_local_filters() writes filters here.  sub_add_local() grows it
	 * to the longest filter ever added, so enumerating cannot fail.
	 */
	uint8_t			*text;
	size_t			 text_cap;
};


static uint32_t
pointer_hash(const void *p)
{
	return (uint32_t)hash_mix64((uint64_t)(uintptr_t)p);
}

/*
 * The key of the child table.  Clients choose topic levels, so the hash
 * is seeded per table with a random value: colliding levels cannot be
 * computed in advance.  It reads eight bytes at a time because this runs
 * for every level of every PUBLISH.
 */
static uint32_t
level_hash(const struct sub_table *t, const struct sub_node *parent,
    const uint8_t *p, size_t len)
{
	uint64_t	 h, w;

	h = t->seed ^ ((uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ULL) ^
	    len;
	while (len >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	w = 0;
	if (len > 0)
		memcpy(&w, p, len);
	return (uint32_t)hash_mix64(h ^ w);
}

static int
ptrtab_resize(struct ptrtab *pt, uint32_t cap, ptrtab_hash_fn hash,
    const void *ctx)
{
	void		**slot;
	uint32_t	  i, j;

	if ((slot = calloc(cap, sizeof(*slot))) == NULL)
		return -1;
	for (i = 0; pt->slot != NULL && i <= pt->mask; i++) {
		if (pt->slot[i] == NULL)
			continue;
		j = hash(ctx, pt->slot[i]) & (cap - 1);
		while (slot[j] != NULL)
			j = (j + 1) & (cap - 1);
		slot[j] = pt->slot[i];
	}
	free(pt->slot);
	pt->slot = slot;
	pt->mask = cap - 1;
	return 0;
}

/* Room for one more element: ptrtab_put() cannot fail after this. */
static int
ptrtab_reserve(struct ptrtab *pt, ptrtab_hash_fn hash, const void *ctx)
{
	uint64_t	 cap = pt->slot != NULL ? (uint64_t)pt->mask + 1 : 0;

	/* At most three quarters full: linear probing degrades past that. */
	if (((uint64_t)pt->count + 1) * 4 <= cap * 3)
		return 0;
	if (cap >= (UINT64_C(1) << 31)) {
		errno = ENOMEM;
		return -1;
	}
	return ptrtab_resize(pt, cap > 0 ? (uint32_t)cap * 2 : PTRTAB_MIN, hash,
	    ctx);
}

static void
ptrtab_put(struct ptrtab *pt, void *elem, uint32_t h)
{
	uint32_t	 i = h & pt->mask;

	while (pt->slot[i] != NULL)
		i = (i + 1) & pt->mask;
	pt->slot[i] = elem;
	pt->count++;
}

/* Where elem is stored, found by identity; it must be there. */
static uint32_t
ptrtab_slot_of(const struct ptrtab *pt, const void *elem, uint32_t h)
{
	uint32_t	 i = h & pt->mask;

	while (pt->slot[i] != elem)
		i = (i + 1) & pt->mask;
	return i;
}

static void
ptrtab_free(struct ptrtab *pt)
{
	free(pt->slot);
	pt->slot = NULL;
	pt->mask = 0;
	pt->count = 0;
}

static void
ptrtab_remove_at(struct ptrtab *pt, uint32_t i, ptrtab_hash_fn hash,
    const void *ctx)
{
	uint32_t	 j = i, home;

	/*
	 * Backward shift: move up every later entry of the run whose home
	 * slot is not after the hole, so lookups never stop early.
	 */
	for (;;) {
		j = (j + 1) & pt->mask;
		if (pt->slot[j] == NULL)
			break;
		home = hash(ctx, pt->slot[j]) & pt->mask;
		if (((j - home) & pt->mask) >= ((j - i) & pt->mask)) {
			pt->slot[i] = pt->slot[j];
			i = j;
		}
	}
	pt->slot[i] = NULL;
	if (--pt->count == 0)
		ptrtab_free(pt);
	else if (pt->mask + 1 > PTRTAB_MIN && pt->count * 8 < pt->mask + 1)
		/* Give memory back after a storm; keeping it is harmless. */
		(void)ptrtab_resize(pt, (pt->mask + 1) / 2, hash, ctx);
}

/* Grow a sub_match or scratch array to hold need elements. */
static int
array_reserve(void **v, size_t *cap, size_t need, size_t size)
{
	size_t	 ncap = *cap > 0 ? *cap : 16;
	void	*nv;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size) {
			errno = ENOMEM;
			return -1;
		}
		ncap *= 2;
	}
	if ((nv = realloc(*v, ncap * size)) == NULL)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

static uint32_t
node_elem_hash(const void *ctx, const void *elem)
{
	return ((const struct sub_node *)elem)->hashv;
}

static uint32_t
remote_elem_hash(const void *ctx, const void *elem)
{
	return pointer_hash(elem);
}

static uint32_t
member_elem_hash(const void *ctx, const void *elem)
{
	const struct sub_members	*ms = ctx;

	return pointer_hash(ms->v[(uintptr_t)elem - 1].owner);
}

/* Position of owner among ms, or -1; *slot is its index entry. */
static int64_t
members_find(const struct sub_members *ms, const void *owner, uint32_t *slot)
{
	uint32_t	 i;
	uintptr_t	 e;

	if (ms->index == NULL) {
		for (i = 0; i < ms->n; i++)
			if (ms->v[i].owner == owner)
				return i;
		return -1;
	}
	for (i = pointer_hash(owner) & ms->index->mask;
	    (e = (uintptr_t)ms->index->slot[i]) != 0;
	    i = (i + 1) & ms->index->mask) {
		if (ms->v[e - 1].owner == owner) {
			*slot = i;
			return (int64_t)(e - 1);
		}
	}
	return -1;
}

static void
members_index_free(struct sub_members *ms)
{
	if (ms->index != NULL) {
		ptrtab_free(ms->index);
		free(ms->index);
		ms->index = NULL;
	}
}

static int
members_index_build(struct sub_members *ms, uint32_t n)
{
	struct ptrtab	*index;
	uint32_t	 cap = PTRTAB_MIN, i;

	while ((uint64_t)n * 4 > (uint64_t)cap * 3)
		cap *= 2;
	if ((index = calloc(1, sizeof(*index))) == NULL)
		return -1;
	if (ptrtab_resize(index, cap, member_elem_hash, ms) == -1) {
		free(index);
		return -1;
	}
	ms->index = index;
	for (i = 0; i < ms->n; i++)
		ptrtab_put(ms->index, (void *)(uintptr_t)(i + 1),
		    pointer_hash(ms->v[i].owner));
	return 0;
}

static int
members_add(struct sub_members *ms, void *owner, const struct sub_options *o)
{
	struct sub_hit	*v;
	uint32_t	 cap;

	if (ms->n == ms->cap) {
		if (ms->cap >= UINT32_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		cap = ms->cap > 0 ? ms->cap * 2 : 1;
		if ((v = realloc(ms->v, cap * sizeof(*v))) == NULL)
			return -1;
		ms->v = v;
		ms->cap = cap;
	}
	if (ms->index != NULL) {
		if (ptrtab_reserve(ms->index, member_elem_hash, ms) == -1)
			return -1;
	} else if (ms->n + 1 > MEMBERS_SCAN_MAX) {
		if (members_index_build(ms, ms->n + 1) == -1)
			return -1;
	}
	ms->v[ms->n].owner = owner;
	ms->v[ms->n].options = *o;
	ms->n++;
	if (ms->index != NULL)
		ptrtab_put(ms->index, (void *)(uintptr_t)ms->n,
		    pointer_hash(owner));
	return 0;
}

static void
members_free(struct sub_members *ms)
{
	free(ms->v);
	ms->v = NULL;
	ms->n = ms->cap = 0;
	members_index_free(ms);
}

/* Remove the member at pos (index entry slot); the last one takes its place. */
static void
members_remove(struct sub_members *ms, uint32_t pos, uint32_t slot)
{
	uint32_t	 last = ms->n - 1;
	struct sub_hit	*v;

	if (ms->index != NULL) {
		ptrtab_remove_at(ms->index, slot, member_elem_hash, ms);
		if (pos != last)
			ms->index->slot[ptrtab_slot_of(ms->index,
			    (void *)(uintptr_t)(last + 1),
			    pointer_hash(ms->v[last].owner))] =
			    (void *)(uintptr_t)(pos + 1);
	}
	ms->v[pos] = ms->v[last];
	if (--ms->n == 0) {
		members_free(ms);
		return;
	}
	if (ms->index != NULL && ms->n <= MEMBERS_SCAN_MAX / 2)
		members_index_free(ms);
	if (ms->n * 4 <= ms->cap &&
	    (v = realloc(ms->v, ms->cap / 2 * sizeof(*v))) != NULL) {
		ms->v = v;
		ms->cap /= 2;
	}
}

static int
leaf_empty(const struct sub_table *t, const struct sub_leaf *leaf)
{
	unsigned	 w;

	if (leaf->local.n > 0 || leaf->groups != NULL)
		return 0;
	for (w = 0; w < t->nwords; w++)
		if (leaf->remote[w] != 0)
			return 0;
	return 1;
}

static int
is_wildcard(const uint8_t *p, size_t len, uint8_t c)
{
	return len == 1 && p[0] == c;
}

static struct sub_node *
child_lookup(const struct sub_table *t, const struct sub_node *parent,
    const uint8_t *p, size_t len, uint32_t h)
{
	const struct ptrtab	*pt = &t->children;
	struct sub_node		*n;
	uint32_t		 i;

	if (pt->slot == NULL)
		return NULL;
	for (i = h & pt->mask; (n = pt->slot[i]) != NULL;
	    i = (i + 1) & pt->mask)
		if (n->hashv == h && n->parent == parent && n->len == len &&
		    memcmp(n->level, p, len) == 0)
			return n;
	return NULL;
}

/* Free node and its ancestors as long as they hold nothing. */
static void
node_prune(struct sub_table *t, struct sub_node *node)
{
	struct sub_node	*parent;

	while (node != t->root && node->leaf == NULL && node->nchildren == 0) {
		parent = node->parent;
		ptrtab_remove_at(&t->children,
		    ptrtab_slot_of(&t->children, node, node->hashv),
		    node_elem_hash, NULL);
		if (parent->plus == node)
			parent->plus = NULL;
		else if (parent->pound == node)
			parent->pound = NULL;
		parent->nchildren--;
		free(node);
		node = parent;
	}
}

/* Free the node's leaf if it holds nothing, then the node if it can go. */
static void
node_release(struct sub_table *t, struct sub_node *node)
{
	if (node->leaf != NULL && leaf_empty(t, node->leaf)) {
		free(node->leaf);
		node->leaf = NULL;
	}
	node_prune(t, node);
}

static struct sub_node *
node_create(struct sub_table *t, struct sub_node *parent, const uint8_t *p,
    size_t len, uint32_t h)
{
	struct sub_node	*n;

	if (ptrtab_reserve(&t->children, node_elem_hash, NULL) == -1)
		return NULL;
	if ((n = malloc(sizeof(*n) + len)) == NULL)
		return NULL;
	n->parent = parent;
	n->plus = n->pound = NULL;
	n->leaf = NULL;
	n->hashv = h;
	n->nchildren = 0;
	n->len = (uint32_t)len;
	memcpy(n->level, p, len);
	ptrtab_put(&t->children, n, h);
	parent->nchildren++;
	if (is_wildcard(p, len, '+'))
		parent->plus = n;
	else if (is_wildcard(p, len, '#'))
		parent->pound = n;
	return n;
}

/*
 * The node of a filter.  With create, missing levels are added (NULL
 * and ENOMEM when that fails, the new levels pruned again); without,
 * NULL means the filter has no node.
 */
static struct sub_node *
node_path(struct sub_table *t, const uint8_t *f, size_t len, int create)
{
	struct sub_node	*node = t->root, *child;
	const uint8_t	*end = f + len, *slash;
	size_t		 llen;
	uint32_t	 h;

	for (;;) {
		slash = memchr(f, '/', (size_t)(end - f));
		llen = slash != NULL ? (size_t)(slash - f) : (size_t)(end - f);
		h = level_hash(t, node, f, llen);
		if (is_wildcard(f, llen, '+'))
			child = node->plus;
		else if (is_wildcard(f, llen, '#'))
			child = node->pound;
		else
			child = child_lookup(t, node, f, llen, h);
		if (child == NULL) {
			if (!create)
				return NULL;
			child = node_create(t, node, f, llen, h);
			if (child == NULL) {
				node_prune(t, node);
				return NULL;
			}
		}
		node = child;
		if (slash == NULL)
			return node;
		f = slash + 1;
	}
}

static struct sub_leaf *
leaf_get(struct sub_table *t, struct sub_node *node)
{
	if (node->leaf == NULL)
		node->leaf = calloc(1, sizeof(*node->leaf) +
		    t->nwords * sizeof(node->leaf->remote[0]));
	return node->leaf;
}

/* The node of a filter, created with its leaf if need be; NULL: ENOMEM. */
static struct sub_node *
node_with_leaf(struct sub_table *t, const struct topic_filter *tf)
{
	struct sub_node	*node;

	if ((node = node_path(t, tf->filter, tf->filter_len, 1)) == NULL)
		return NULL;
	if (leaf_get(t, node) == NULL) {
		node_prune(t, node);
		return NULL;
	}
	return node;
}

static struct sub_group *
group_find(const struct sub_leaf *leaf, const uint8_t *name, size_t len)
{
	struct sub_group	*g;

	for (g = leaf->groups; g != NULL; g = g->next)
		if (g->name_len == len && memcmp(g->text +
		    TOPIC_SHARE_PREFIX_LEN, name, len) == 0)
			return g;
	return NULL;
}

static struct sub_group *
group_get(struct sub_table *t, struct sub_node *node,
    const struct topic_filter *tf)
{
	struct sub_group	*g;
	size_t			 text_len;

	if ((g = group_find(node->leaf, tf->share, tf->share_len)) != NULL)
		return g;
	text_len = TOPIC_SHARE_PREFIX_LEN + tf->share_len + 1 + tf->filter_len;
	if ((g = calloc(1, sizeof(*g) + text_len)) == NULL)
		return NULL;
	g->node = node;
	g->nslots = (uint16_t)t->nworkers;
	g->name_len = (uint16_t)tf->share_len;
	g->text_len = (uint32_t)text_len;
	memcpy(g->text, TOPIC_SHARE_PREFIX, TOPIC_SHARE_PREFIX_LEN);
	memcpy(g->text + TOPIC_SHARE_PREFIX_LEN, tf->share, tf->share_len);
	g->text[TOPIC_SHARE_PREFIX_LEN + tf->share_len] = '/';
	memcpy(g->text + TOPIC_SHARE_PREFIX_LEN + tf->share_len + 1,
	    tf->filter, tf->filter_len);
	g->next = node->leaf->groups;
	node->leaf->groups = g;
	return g;
}

/* Free the group if it has no members anywhere, and its node if it can go. */
static void
group_release(struct sub_table *t, struct sub_group *g)
{
	struct sub_group	**gp;
	struct sub_node		 *node = g->node;

	if (g->local.n > 0 || g->nremote > 0)
		return;
	for (gp = &node->leaf->groups; *gp != g; gp = &(*gp)->next)
		;
	*gp = g->next;
	free(g);
	node_release(t, node);
}

static int
filter_check(const struct topic_filter *tf)
{
	if (tf->filter_len == 0 || tf->filter_len > SUB_MAX_LEN ||
	    (tf->share != NULL &&
	    (tf->share_len == 0 || tf->share_len > SUB_MAX_LEN))) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int
slot_check(const struct sub_table *t, unsigned slot)
{
	if (slot >= t->nworkers || slot == t->self_slot) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

struct sub_table *
sub_table_new(unsigned nworkers, unsigned self_slot)
{
	struct sub_table	*t;

	if (nworkers == 0 || nworkers > SUB_MAX_WORKERS) {
		errno = EINVAL;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->nworkers = nworkers;
	t->self_slot = self_slot;
	t->nwords = (nworkers + 63) / 64;
	if ((t->root = calloc(1, sizeof(*t->root))) == NULL ||
	    (t->remote = calloc(nworkers, sizeof(*t->remote))) == NULL ||
	    array_reserve((void **)&t->stack, &t->stack_cap, 16,
	    sizeof(*t->stack)) == -1) {
		sub_table_free(t);
		return NULL;
	}
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->seed))
		/* No entropy yet (early boot): still differs per process. */
		t->seed = hash_mix64((uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t);
	return t;
}

void
sub_table_free(struct sub_table *t)
{
	struct sub_node		*n;
	struct sub_group	*g, *next;
	uint32_t		 i;
	unsigned		 s;

	if (t == NULL)
		return;
	for (i = 0; t->children.slot != NULL && i <= t->children.mask; i++) {
		if ((n = t->children.slot[i]) == NULL)
			continue;
		if (n->leaf != NULL) {
			for (g = n->leaf->groups; g != NULL; g = next) {
				next = g->next;
				members_free(&g->local);
				free(g->remote);
				free(g);
			}
			members_free(&n->leaf->local);
			free(n->leaf);
		}
		free(n);
	}
	ptrtab_free(&t->children);
	for (s = 0; t->remote != NULL && s < t->nworkers; s++)
		ptrtab_free(&t->remote[s]);
	free(t->remote);
	free(t->root);
	free(t->stack);
	free(t->text);
	free(t);
}

int
sub_add_local(struct sub_table *t, const struct topic_filter *tf, void *owner,
    const struct sub_options *o, uint32_t *count)
{
	struct sub_node		*node;
	struct sub_group	*g = NULL;
	struct sub_members	*ms;
	size_t			 text_len = tf->filter_len;
	uint32_t		 slot;
	int64_t			 pos;

	if (filter_check(tf) == -1)
		return -1;
	if (tf->share != NULL)
		text_len += TOPIC_SHARE_PREFIX_LEN + tf->share_len + 1;
	if (array_reserve((void **)&t->text, &t->text_cap, text_len, 1) == -1)
		return -1;
	if ((node = node_with_leaf(t, tf)) == NULL)
		return -1;
	if (tf->share != NULL) {
		if ((g = group_get(t, node, tf)) ==
		    NULL) {
			node_release(t, node);
			return -1;
		}
		ms = &g->local;
	} else
		ms = &node->leaf->local;
	if ((pos = members_find(ms, owner, &slot)) != -1) {
		ms->v[pos].options = *o;
		*count = ms->n;
		return 1;
	}
	if (members_add(ms, owner, o) == -1) {
		if (g != NULL)
			group_release(t, g);
		else
			node_release(t, node);
		return -1;
	}
	t->nlocal++;
	*count = ms->n;
	return 0;
}

int
sub_remove_local(struct sub_table *t, const struct topic_filter *tf,
    void *owner, uint32_t *count)
{
	struct sub_node		*node;
	struct sub_group	*g = NULL;
	struct sub_members	*ms;
	uint32_t		 slot = 0;
	int64_t			 pos;

	*count = 0;
	if (filter_check(tf) == -1)
		return -1;
	if ((node = node_path(t, tf->filter, tf->filter_len, 0)) == NULL ||
	    node->leaf == NULL)
		return 1;
	if (tf->share != NULL) {
		if ((g = group_find(node->leaf, tf->share, tf->share_len)) ==
		    NULL)
			return 1;
		ms = &g->local;
	} else
		ms = &node->leaf->local;
	if ((pos = members_find(ms, owner, &slot)) == -1) {
		*count = ms->n;
		return 1;
	}
	members_remove(ms, (uint32_t)pos, slot);
	t->nlocal--;
	*count = ms->n;
	if (g != NULL)
		group_release(t, g);
	else
		node_release(t, node);
	return 0;
}

static void
remote_forget(struct sub_table *t, unsigned slot, void *elem)
{
	struct ptrtab	*pt = &t->remote[slot];

	ptrtab_remove_at(pt, ptrtab_slot_of(pt, elem, pointer_hash(elem)),
	    remote_elem_hash, NULL);
}

static void
group_remote_clear(struct sub_group *g, unsigned slot)
{
	g->remote[slot] = 0;
	if (--g->nremote == 0) {
		free(g->remote);
		g->remote = NULL;
	}
}

static int
remote_withdraw(struct sub_table *t, const struct topic_filter *tf,
    unsigned slot)
{
	struct sub_node		*node;
	struct sub_group	*g;
	uint64_t		 bit = UINT64_C(1) << (slot % 64);

	if ((node = node_path(t, tf->filter, tf->filter_len, 0)) == NULL ||
	    node->leaf == NULL)
		return 0;
	if (tf->share == NULL) {
		if ((node->leaf->remote[slot / 64] & bit) == 0)
			return 0;
		node->leaf->remote[slot / 64] &= ~bit;
		remote_forget(t, slot, node);
		node_release(t, node);
		return 0;
	}
	if ((g = group_find(node->leaf, tf->share, tf->share_len)) == NULL ||
	    g->remote == NULL || g->remote[slot] == 0)
		return 0;
	group_remote_clear(g, slot);
	remote_forget(t, slot, (void *)((uintptr_t)g | REMOTE_GROUP_TAG));
	group_release(t, g);
	return 0;
}

int
sub_set_remote(struct sub_table *t, const struct topic_filter *tf,
    unsigned slot, uint32_t count)
{
	struct sub_node		*node;
	struct sub_group	*g;
	uint64_t		 bit = UINT64_C(1) << (slot % 64);

	if (filter_check(tf) == -1 || slot_check(t, slot) == -1)
		return -1;
	if (count == 0)
		return remote_withdraw(t, tf, slot);
	/* Room in the slot's set first: nothing can fail after a change. */
	if (ptrtab_reserve(&t->remote[slot], remote_elem_hash, NULL) == -1)
		return -1;
	if ((node = node_with_leaf(t, tf)) == NULL)
		return -1;
	if (tf->share == NULL) {
		if ((node->leaf->remote[slot / 64] & bit) == 0) {
			node->leaf->remote[slot / 64] |= bit;
			ptrtab_put(&t->remote[slot], node, pointer_hash(node));
		}
		return 0;
	}
	if ((g = group_get(t, node, tf)) == NULL) {
		node_release(t, node);
		return -1;
	}
	if (g->remote == NULL &&
	    (g->remote = calloc(t->nworkers, sizeof(*g->remote))) == NULL) {
		group_release(t, g);
		return -1;
	}
	if (g->remote[slot] == 0) {
		void	*elem = (void *)((uintptr_t)g | REMOTE_GROUP_TAG);

		g->nremote++;
		ptrtab_put(&t->remote[slot], elem, pointer_hash(elem));
	}
	g->remote[slot] = count;
	return 0;
}

void
sub_clear_remote(struct sub_table *t, unsigned slot)
{
	struct ptrtab		 pt;
	struct sub_group	*g;
	struct sub_node		*node;
	uintptr_t		 e;
	uint32_t		 i;

	if (slot_check(t, slot) == -1)
		return;
	/*
	 * Take the slot's set out of the table first: releasing what it
	 * held prunes nodes, which must not find a set being walked.  Every
	 * element is still interested through this slot until its turn, so
	 * no release frees one that is yet to come.
	 */
	pt = t->remote[slot];
	memset(&t->remote[slot], 0, sizeof(t->remote[slot]));
	for (i = 0; pt.slot != NULL && i <= pt.mask; i++) {
		if ((e = (uintptr_t)pt.slot[i]) == 0)
			continue;
		if (e & REMOTE_GROUP_TAG) {
			g = (struct sub_group *)(e & ~REMOTE_GROUP_TAG);
			group_remote_clear(g, slot);
			group_release(t, g);
		} else {
			node = (struct sub_node *)e;
			node->leaf->remote[slot / 64] &=
			    ~(UINT64_C(1) << (slot % 64));
			node_release(t, node);
		}
	}
	ptrtab_free(&pt);
}

/*
 * Write the filter of node so that it ends at the end of t->text, and
 * return where it starts; the space before it is free for a $share
 * prefix.
 */
static uint8_t *
filter_text(struct sub_table *t, const struct sub_node *node)
{
	uint8_t			*p = t->text + t->text_cap;
	const struct sub_node	*n;

	for (n = node; n != t->root; n = n->parent) {
		if (n != node)
			*--p = '/';
		p -= n->len;
		memcpy(p, n->level, n->len);
	}
	return p;
}

void
sub_local_filters(struct sub_table *t,
    void (*fn)(const uint8_t *filter, size_t len, uint32_t count, void *arg),
    void *arg)
{
	struct sub_node		*node;
	struct sub_group	*g;
	uint8_t			*f;
	size_t			 flen;
	uint32_t		 i;

	for (i = 0; t->children.slot != NULL && i <= t->children.mask; i++) {
		if ((node = t->children.slot[i]) == NULL || node->leaf == NULL)
			continue;
		/*
		 * Only a filter that was added locally is written out: the
		 * text buffer is sized by sub_add_local(), not by remote
		 * announcements.
		 */
		if (node->leaf->local.n > 0) {
			f = filter_text(t, node);
			flen = (size_t)(t->text + t->text_cap - f);
			fn(f, flen, node->leaf->local.n, arg);
		}
		for (g = node->leaf->groups; g != NULL; g = g->next) {
			if (g->local.n == 0)
				continue;
			fn(g->text, g->text_len, g->local.n, arg);
		}
	}
}

/* Add what subscribes at node to the result. */
static int
match_collect(const struct sub_table *t, struct sub_match *m,
    const struct sub_node *node)
{
	const struct sub_leaf	*leaf = node->leaf;
	struct sub_group	*g;
	unsigned		 w;

	if (leaf == NULL)
		return 0;
	if (leaf->local.n > 0) {
		if (array_reserve((void **)&m->hits, &m->hits_cap,
		    m->nhits + leaf->local.n, sizeof(*m->hits)) == -1)
			return -1;
		memcpy(m->hits + m->nhits, leaf->local.v,
		    leaf->local.n * sizeof(*m->hits));
		m->nhits += leaf->local.n;
	}
	for (w = 0; w < t->nwords; w++)
		m->workers[w] |= leaf->remote[w];
	for (g = leaf->groups; g != NULL; g = g->next) {
		if (array_reserve((void **)&m->shares, &m->shares_cap,
		    m->nshares + 1, sizeof(*m->shares)) == -1)
			return -1;
		m->shares[m->nshares++].group = g;
	}
	return 0;
}

/*
 * A depth-first walk with an explicit stack: a topic may have tens of
 * thousands of levels ("////..."), too many for recursion.  Each node is
 * reached at most once, since a filter lines up with a topic name in one
 * way only, so nothing is reported twice.
 */
int
sub_match(struct sub_table *t, const uint8_t *topic, size_t len,
    struct sub_match *m)
{
	const struct sub_node	*node, *child;
	const uint8_t		*p, *slash;
	size_t			 sp = 0, llen, next;
	uint32_t		 literal;
	int			 dollar = len > 0 && topic[0] == '$';
	int			 wild;

	m->nhits = 0;
	m->nshares = 0;
	memset(m->workers, 0, sizeof(m->workers));
	if (t->root->nchildren == 0)
		return 0;
	t->stack[sp].node = t->root;
	t->stack[sp++].pos = 0;
	while (sp > 0) {
		node = t->stack[--sp].node;
		if (t->stack[sp].pos > len) {
			/* All levels used: "a/#" also matches "a". */
			if (match_collect(t, m, node) == -1 ||
			    (node->pound != NULL &&
			    match_collect(t, m, node->pound) == -1))
				return -1;
			continue;
		}
		if (node->nchildren == 0)
			continue;
		p = topic + t->stack[sp].pos;
		slash = memchr(p, '/', len - t->stack[sp].pos);
		llen = slash != NULL ? (size_t)(slash - p) :
		    len - t->stack[sp].pos;
		next = t->stack[sp].pos + llen + 1;
		/* MQTT 4.7.2: wildcards at the start never match "$...". */
		wild = node != t->root || !dollar;
		if (wild && node->pound != NULL &&
		    match_collect(t, m, node->pound) == -1)
			return -1;
		if (array_reserve((void **)&t->stack, &t->stack_cap, sp + 2,
		    sizeof(*t->stack)) == -1)
			return -1;
		if (wild && node->plus != NULL) {
			t->stack[sp].node = node->plus;
			t->stack[sp++].pos = next;
		}
		literal = node->nchildren - (node->plus != NULL) -
		    (node->pound != NULL);
		/* A name has no "+" or "#" level: do not take one for it. */
		if (literal > 0 && !is_wildcard(p, llen, '+') &&
		    !is_wildcard(p, llen, '#') &&
		    (child = child_lookup(t, node, p, llen,
		    level_hash(t, node, p, llen))) != NULL) {
			t->stack[sp].node = child;
			t->stack[sp++].pos = next;
		}
	}
	return 0;
}

void
sub_match_free(struct sub_match *m)
{
	free(m->hits);
	free(m->shares);
	memset(m, 0, sizeof(*m));
}

int
sub_match_worker(const struct sub_match *m, unsigned slot)
{
	if (slot >= SUB_MAX_WORKERS)
		return 0;
	return (m->workers[slot / 64] >> (slot % 64)) & 1;
}

int
sub_match_anywhere(const struct sub_match *m)
{
	size_t	 w;

	if (m->nhits > 0 || m->nshares > 0)
		return 1;
	for (w = 0; w < SUB_MAX_WORKERS / 64; w++)
		if (m->workers[w] != 0)
			return 1;
	return 0;
}

const uint8_t *
sub_group_name(const struct sub_group *g, size_t *len)
{
	*len = g->name_len;
	return g->text + TOPIC_SHARE_PREFIX_LEN;
}

size_t
sub_group_local_count(const struct sub_group *g)
{
	return g->local.n;
}

struct sub_hit *
sub_group_local(const struct sub_group *g, size_t i)
{
	return i < g->local.n ? &g->local.v[i] : NULL;
}

const uint8_t *
sub_group_text(const struct sub_group *g, size_t *len)
{
	*len = g->text_len;
	return g->text;
}

uint32_t
sub_group_turn(struct sub_group *g)
{
	return g->turn++;
}

struct sub_group *
sub_group_find(struct sub_table *t, const struct topic_filter *tf)
{
	struct sub_node	*node;

	if (tf->share == NULL || (node = node_path(t, tf->filter,
	    tf->filter_len, 0)) == NULL || node->leaf == NULL)
		return NULL;
	return group_find(node->leaf, tf->share, tf->share_len);
}

uint32_t
sub_group_remote_count(const struct sub_group *g, unsigned slot)
{
	if (g->remote == NULL || slot >= g->nslots)
		return 0;
	return g->remote[slot];
}

size_t
sub_local_count(const struct sub_table *t)
{
	return t->nlocal;
}

size_t
sub_node_count(const struct sub_table *t)
{
	return t->children.count;
}

//! The `#[nestloop::main]` and `#[nestloop::test]` attributes.
//!
//! Use them through nestloop's feature `macros`; their documentation is on
//! the re-exports, `nestloop::main` and `nestloop::test`. Both turn an
//! `async fn` into a plain `fn` whose body is `nestloop::block_on` of the
//! original body, as `#[tokio::main]` and `#[tokio::test]` do with a tokio
//! runtime.
//!
//! The item is handled as tokens, without a parser crate: everything up to
//! the body is kept as written except the `async` keyword, and the body is
//! wrapped.

use std::str::FromStr;

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

// Documented where nestloop re-exports it.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand("main", args, item)
}

// Documented where nestloop re-exports it.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand("test", args, item)
}

/// The expansion of `#[nestloop::<attr>]` on `item`, or a `compile_error!`
/// that says what is wrong.
fn expand(attr: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    match rewrite(attr, args, item) {
        Ok(tokens) => tokens,
        Err((message, span)) => compile_error(&message, span),
    }
}

type Error = (String, Span);

fn rewrite(attr: &str, args: TokenStream, item: TokenStream) -> Result<TokenStream, Error> {
    if let Some(arg) = args.into_iter().next() {
        return Err((
            format!("nestloop: #[nestloop::{attr}] takes no arguments; remove them"),
            arg.span(),
        ));
    }
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let not_async_fn = || {
        (
            format!("nestloop: #[nestloop::{attr}] goes on an `async fn`"),
            Span::call_site(),
        )
    };
    let body = match tokens.pop() {
        Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
        _ => return Err(not_async_fn()),
    };
    let fn_at = tokens
        .iter()
        .position(|t| is_ident(t, "fn"))
        .ok_or_else(not_async_fn)?;
    let async_at = tokens[..fn_at]
        .iter()
        .position(|t| is_ident(t, "async"))
        .ok_or_else(|| {
            (
                format!(
                    "nestloop: #[nestloop::{attr}] goes on an `async fn`: add `async` before `fn`"
                ),
                tokens[fn_at].span(),
            )
        })?;
    // The signature after the name: the parameters, then `-> Output`.
    let params_at = tokens[fn_at..]
        .iter()
        .position(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis))
        .map(|i| fn_at + i)
        .ok_or_else(not_async_fn)?;
    if let TokenTree::Group(params) = &tokens[params_at]
        && !params.stream().is_empty()
    {
        return Err((
            format!("nestloop: an async fn under #[nestloop::{attr}] cannot take arguments"),
            params.span(),
        ));
    }
    if tokens[fn_at..params_at]
        .iter()
        .any(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '<'))
    {
        return Err((
            format!("nestloop: an async fn under #[nestloop::{attr}] cannot be generic"),
            tokens[fn_at].span(),
        ));
    }
    let output = output_type(&tokens[params_at + 1..]);
    tokens.remove(async_at);

    let mut expanded = TokenStream::new();
    if attr == "test" {
        expanded.extend(TokenStream::from_str("#[::core::prelude::v1::test]").unwrap());
    }
    expanded.extend(tokens);
    expanded.extend([TokenTree::Group(Group::new(
        Delimiter::Brace,
        wrapped_body(body, output),
    ))]);
    Ok(expanded)
}

/// The body of the rewritten function: the original body as an async
/// block, typed by the function's output (so that `?` and `return` infer
/// as they did in the `async fn`), run by `nestloop::block_on`.
fn wrapped_body(body: Group, output: TokenStream) -> TokenStream {
    let mut stream = TokenStream::from_str(
        "let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = ",
    )
    .unwrap();
    stream.extend(output);
    stream.extend(TokenStream::from_str(">> = ::core::pin::pin!").unwrap());
    // The original body keeps its spans, for the errors in it.
    let mut future = TokenStream::from_str("async").unwrap();
    future.extend([TokenTree::Group(body)]);
    stream.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, future))]);
    stream.extend(TokenStream::from_str("; ::nestloop::block_on(body)").unwrap());
    stream
}

/// The tokens of `-> Output` in `rest` (what follows the parameters, up to
/// a `where` clause), or `()` when there is none.
fn output_type(rest: &[TokenTree]) -> TokenStream {
    let arrow = matches!(
        rest,
        [TokenTree::Punct(minus), TokenTree::Punct(gt), ..]
            if minus.as_char() == '-' && minus.spacing() == Spacing::Joint && gt.as_char() == '>'
    );
    if !arrow {
        return TokenStream::from_str("()").unwrap();
    }
    rest[2..]
        .iter()
        .take_while(|t| !is_ident(t, "where"))
        .cloned()
        .collect()
}

fn is_ident(token: &TokenTree, name: &str) -> bool {
    matches!(token, TokenTree::Ident(ident) if ident.to_string() == name)
}

/// `::core::compile_error!("message")`, reported at `span`.
fn compile_error(message: &str, span: Span) -> TokenStream {
    let mut tokens = TokenStream::new();
    for name in ["core", "compile_error"] {
        tokens.extend(path_sep(span));
        tokens.extend([TokenTree::Ident(Ident::new(name, span))]);
    }
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut literal = proc_macro::Literal::string(message);
    literal.set_span(span);
    let mut args = Group::new(Delimiter::Parenthesis, TokenTree::Literal(literal).into());
    args.set_span(span);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    tokens.extend([
        TokenTree::Punct(bang),
        TokenTree::Group(args),
        TokenTree::Punct(semi),
    ]);
    tokens
}

/// `::` with its span set.
fn path_sep(span: Span) -> [TokenTree; 2] {
    let mut first = Punct::new(':', Spacing::Joint);
    first.set_span(span);
    let mut second = Punct::new(':', Spacing::Alone);
    second.set_span(span);
    [TokenTree::Punct(first), TokenTree::Punct(second)]
}
